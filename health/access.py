"""Who may read ``/health/detailed``: a client on a configured network, or a bearer token.

The rule is ``config.clients``' (the one ``/metrics`` uses, on the app and the live servers),
with this path's settings. Everyone else gets a 404, the same as a path that does not exist.
"""

from __future__ import annotations

from django.conf import settings

from config.clients import Caller, may_read_operator_path


def may_read_detailed(caller: Caller) -> bool:
    return may_read_operator_path(
        caller, token=settings.HEALTH_DETAILED_TOKEN, networks=settings.HEALTH_DETAILED_ALLOWED_NETWORKS
    )
