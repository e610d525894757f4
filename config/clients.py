"""Which address is the client's, behind trusted proxies; and bearer-token checks for operator paths.

Shared by ``/health/detailed`` (health/access.py) and ``/metrics`` (config/observability.py), so
both operator endpoints decide "internal" the same way:

- ``REMOTE_ADDR`` is the peer of the TCP connection, which nobody can forge.
- ``X-Forwarded-For`` is believed only when that peer is a trusted proxy
  (``HEALTH_TRUSTED_PROXIES``: NGINX on loopback by default, the ingress controller's pod network
  on Kubernetes). A proxy *appends* the address it saw, so the header is read from the right:
  every hop added by a trusted proxy is skipped, and the first address that is not a trusted
  proxy is the client. Anything to its left was written by the client and is ignored, so
  ``X-Forwarded-For: 10.0.0.1`` sent from outside gets nowhere.
- A hop that is not an IP address makes the client unknown, and an unknown client is refused.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable

from django.conf import settings
from django.http import HttpRequest

from config.bearer import bearer_token

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def client_address(request: HttpRequest) -> Address | None:
    peer = parse_address(request.META.get("REMOTE_ADDR", ""))
    if peer is None or not within(peer, settings.HEALTH_TRUSTED_PROXIES):
        return peer
    client = peer
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    for hop in reversed([part.strip() for part in forwarded.split(",") if part.strip()]):
        address = parse_address(hop)
        if address is None:
            return None
        client = address
        if not within(address, settings.HEALTH_TRUSTED_PROXIES):
            break
    return client


def client_within(request: HttpRequest, networks: Iterable[str]) -> bool:
    """Whether the (proxy-aware) client address is on one of ``networks``."""
    client = client_address(request)
    return client is not None and within(client, networks)


def has_bearer_token(request: HttpRequest, token: str) -> bool:
    """Whether the request carries ``Authorization: Bearer <token>``; never with an empty token."""
    presented = bearer_token(request.META.get("HTTP_AUTHORIZATION"))
    if not token or presented is None:
        return False
    return hmac.compare_digest(presented.encode(), token.encode())


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
