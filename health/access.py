"""Who may read ``/health/detailed``: a client on a configured network, or a bearer token.

The client's address is worked out behind trusted proxies by ``config.clients`` (the same rule
``/metrics`` uses). Everyone else gets a 404, the same as a path that does not exist.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from config.clients import client_address, client_within, has_bearer_token

__all__ = ["client_address", "may_read_detailed"]


def may_read_detailed(request: HttpRequest) -> bool:
    if has_bearer_token(request, settings.HEALTH_DETAILED_TOKEN):
        return True
    return client_within(request, settings.HEALTH_DETAILED_ALLOWED_NETWORKS)
