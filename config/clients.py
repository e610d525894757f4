"""Who is calling, and may they read an operator path (``/health/detailed``, ``/metrics``)?

One rule for every server, so the app servers (Django views, middleware) and the live server
(ASGI) decide "internal" the same way. It works from a :class:`Caller`: the TCP peer and two
request headers, read from a WSGI environ (``request.META``) or an ASGI scope.

- The peer of the TCP connection is the client's address unless it is a trusted proxy; nobody
  can forge it.
- ``X-Forwarded-For`` is believed only when that peer is a trusted proxy
  (``HEALTH_TRUSTED_PROXIES``: NGINX on loopback by default, the ingress controller's pod network
  on Kubernetes). A proxy *appends* the address it saw, so the header is read from the right:
  every hop added by a trusted proxy is skipped, and the first address that is not a trusted
  proxy is the client. Anything to its left was written by the client and is ignored, so
  ``X-Forwarded-For: 10.0.0.1`` sent from outside gets nowhere.
- An IPv4-mapped IPv6 address (``::ffff:10.1.2.3``, what a dual-stack socket reports for an
  IPv4 peer) is the IPv4 address it carries, so IPv4 networks match it.
- A hop that is not an IP address makes the client unknown, and an unknown client is refused.
- A bearer token (``config.bearer``) equal to the path's token lets any client in; an empty
  token setting lets nobody in by token.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from config.bearer import bearer_token

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Caller:
    """What a server knows of who is calling: the TCP peer and the headers that matter here."""

    peer: str
    forwarded_for: str = ""
    authorization: str | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, Any]) -> Caller:
        """From a WSGI environ, or Django's ``request.META`` (the same keys)."""
        return cls(
            peer=str(environ.get("REMOTE_ADDR") or ""),
            forwarded_for=str(environ.get("HTTP_X_FORWARDED_FOR") or ""),
            authorization=environ.get("HTTP_AUTHORIZATION"),
        )

    @classmethod
    def from_scope(cls, scope: Mapping[str, Any]) -> Caller:
        """From an ASGI scope: ``client`` is the TCP peer when the server rewrites no proxy headers."""
        headers: dict[str, str] = {}
        for name, value in scope.get("headers") or []:
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            headers[key] = f"{headers[key]},{text}" if key in headers else text  # as WSGI joins them
        client = scope.get("client") or ("", 0)
        return cls(
            peer=str(client[0]),
            forwarded_for=headers.get("x-forwarded-for", ""),
            authorization=headers.get("authorization"),
        )


def client_address(caller: Caller) -> Address | None:
    """The client's address behind trusted proxies, or None when it cannot be known."""
    peer = parse_address(caller.peer)
    if peer is None or not within(peer, settings.HEALTH_TRUSTED_PROXIES):
        return peer
    client = peer
    hops = [part.strip() for part in caller.forwarded_for.split(",") if part.strip()]
    for hop in reversed(hops):
        address = parse_address(hop)
        if address is None:
            return None
        client = address
        if not within(address, settings.HEALTH_TRUSTED_PROXIES):
            break
    return client


def may_read_operator_path(caller: Caller, *, token: str, networks: Iterable[str]) -> bool:
    """Whether ``caller`` presents ``token`` as a bearer token or calls from one of ``networks``."""
    presented = bearer_token(caller.authorization)
    if token and presented is not None and hmac.compare_digest(presented.encode(), token.encode()):
        return True
    client = client_address(caller)
    return client is not None and within(client, networks)


def parse_address(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def within(address: Address, networks: Iterable[str]) -> bool:
    return any(address in ipaddress.ip_network(network, strict=False) for network in networks)
