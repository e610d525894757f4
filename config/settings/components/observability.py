"""Settings for metrics and logs (``config/metrics.py``, ``config/observability.py``).

``PROMETHEUS_MULTIPROC_DIR`` itself is read by prometheus-client from the environment, before
Django starts; it is set per process group by whatever starts the server (the local cluster,
the systemd unit, the Kubernetes manifest).
"""

import environ

env = environ.Env()

# A folder whose sub-folders are this server's process groups' metrics (gunicorn, the Celery
# worker, beat); /metrics reads all of them. Empty: read only PROMETHEUS_MULTIPROC_DIR.
METRICS_SERVER_DIR = env("METRICS_SERVER_DIR", default="")

# Who may read /metrics: the scraper and the balancer, by network (the client address behind
# HEALTH_TRUSTED_PROXIES, as for /health/detailed) or by bearer token. Everyone else gets a 404.
# Production narrows the networks to loopback and requires a token (settings/production.py).
METRICS_TOKEN = env("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = env.list(
    "METRICS_ALLOWED_NETWORKS",
    default=["127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"],
)
