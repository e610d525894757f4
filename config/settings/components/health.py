"""Settings for the ``health`` app. Every value comes from the environment.

The drain period itself (``HEALTH_DRAIN_SECONDS``) is read by the gunicorn master in
``deploy/gunicorn/gunicorn.conf.py``, which runs before Django is loaded.
"""

import environ

env = environ.Env()

# Budget for one dependency call (connect + query, or a Redis PING). The probes answer within
# this plus a small margin even when a dependency is paused and never answers.
HEALTH_CHECK_TIMEOUT = env.float("HEALTH_CHECK_TIMEOUT", default=1.0)
# Ready and detailed results are reused for this long in each process, so many balancers
# polling at once cost one round of checks. The drain flag is never cached.
HEALTH_CACHE_SECONDS = env.float("HEALTH_CACHE_SECONDS", default=1.0)

# Replica lag is not measured here: /health/detailed reports the router's measurement of each
# replica in REPLICA_DATABASES against REPLICA_MAX_LAG_MS (config/settings/components/replicas.py).

HEALTH_DISK_PATH = env("HEALTH_DISK_PATH", default="/")
HEALTH_DISK_MAX_PERCENT = env.float("HEALTH_DISK_MAX_PERCENT", default=90.0)
HEALTH_MEMORY_MAX_PERCENT = env.float("HEALTH_MEMORY_MAX_PERCENT", default=90.0)

# Who may read /health/detailed: these networks (checked against the client address, see
# health/access.py) or anyone presenting the bearer token. Everyone else gets a 404.
HEALTH_DETAILED_ALLOWED_NETWORKS = env.list(
    "HEALTH_DETAILED_ALLOWED_NETWORKS",
    default=["127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"],
)
HEALTH_DETAILED_TOKEN = env("HEALTH_DETAILED_TOKEN", default="")
# Proxies whose X-Forwarded-For is believed: NGINX on the same host by default. Put the
# balancer's address here when it runs elsewhere, or every proxied client looks private.
HEALTH_TRUSTED_PROXIES = env.list("HEALTH_TRUSTED_PROXIES", default=["127.0.0.0/8", "::1/128"])

# /health/debug/slow?seconds=N sleeps, so the drain tests can hold a request open across a
# SIGTERM. Off unless the environment turns it on (the local cluster does); never in production.
HEALTH_DEBUG_SLOW_ENDPOINT = env.bool("HEALTH_DEBUG_SLOW_ENDPOINT", default=False)
# Celery workers get this long to answer a broadcast ping (the check always waits it out).
HEALTH_CELERY_PING_TIMEOUT = env.float("HEALTH_CELERY_PING_TIMEOUT", default=0.3)
