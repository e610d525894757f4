"""Local development settings (the default): talks to the loopback cluster from ``make up``.

The cluster writes the ports it actually uses to ``.cluster/cluster.env``; reading it here lets
``.venv/bin/python manage.py ...`` reach the running cluster with no extra environment.
Variables already set in the environment win.
"""

from pathlib import Path

import environ

environ.Env.read_env(Path(__file__).resolve().parent.parent.parent / ".cluster" / "cluster.env")

from config.settings.base import *  # noqa: E402,F403

# DEBUG stays off unless DJANGO_DEBUG turns it on (base.py): the local cluster's app servers,
# workers and beats run production-shaped, and its test-only endpoints are switched on by their
# own settings (HEALTH_DEBUG_SLOW_ENDPOINT, REPLICAS_DEBUG_ENDPOINTS), never by DEBUG.

# The API's schema and docs page (/api/openapi.json, /api/docs): on for development, off by
# default everywhere else (components/messaging.py).
MESSAGING_API_DOCS = env.bool("MESSAGING_API_DOCS", default=True)  # noqa: F405

# The local edge listens on a port of its own (NGINX_HTTPS_PORT) and passes Host without it, so a
# form posted from https://localhost:<port> (the admin's login) names an origin Django must be told.
_EDGE_PORT = env.int("NGINX_HTTPS_PORT", default=28443)  # noqa: F405
CSRF_TRUSTED_ORIGINS = [f"https://localhost:{_EDGE_PORT}", f"https://127.0.0.1:{_EDGE_PORT}"]
# The edge pair's virtual address, where the cluster's clients go (deploy/local/cluster/edge.py).
_EDGE_URL = env("EDGE_URL", default="")  # noqa: F405
if _EDGE_URL:
    CSRF_TRUSTED_ORIGINS.append(_EDGE_URL)
