"""Who may read ``/health/detailed``: a client on a configured network, or a bearer token.

Which address is the client's:

- ``REMOTE_ADDR`` is the peer of the TCP connection, which nobody can forge.
- ``X-Forwarded-For`` is believed only when that peer is a trusted proxy
  (``HEALTH_TRUSTED_PROXIES``, NGINX on loopback by default). NGINX *appends* the address it
  saw, so the header is read from the right: every hop added by a trusted proxy is skipped, and
  the first address that is not a trusted proxy is the client. Anything to its left was written
  by the client and is ignored, so ``X-Forwarded-For: 10.0.0.1`` sent from outside gets nowhere.
- A hop that is not an IP address makes the client unknown, and an unknown client is refused.

Everyone else gets a 404, the same as a path that does not exist.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable

from django.conf import settings
from django.http import HttpRequest

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def may_read_detailed(request: HttpRequest) -> bool:
    if _has_token(request):
        return True
    client = client_address(request)
    return client is not None and _within(client, settings.HEALTH_DETAILED_ALLOWED_NETWORKS)


def client_address(request: HttpRequest) -> Address | None:
    peer = _parse(request.META.get("REMOTE_ADDR", ""))
    if peer is None or not _within(peer, settings.HEALTH_TRUSTED_PROXIES):
        return peer
    client = peer
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    for hop in reversed([part.strip() for part in forwarded.split(",") if part.strip()]):
        address = _parse(hop)
        if address is None:
            return None
        client = address
        if not _within(address, settings.HEALTH_TRUSTED_PROXIES):
            break
    return client


def _has_token(request: HttpRequest) -> bool:
    token = settings.HEALTH_DETAILED_TOKEN
    scheme, _, presented = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if not token or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), token.encode())


def _parse(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _within(address: Address, networks: Iterable[str]) -> bool:
    return any(address in ipaddress.ip_network(network, strict=False) for network in networks)
