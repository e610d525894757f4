"""Settings for the ``deploy`` app: the values ``manage.py render_deploy`` fills the templates with.

Every value comes from the environment. A value that only the deployment can know (hosts,
addresses, the image) has no default: ``None`` here, and ``render_deploy`` refuses to render a
template that needs it, naming the variable, rather than fill in a loopback guess. The others
default to the production layout of the runbooks (``/srv/app``, the standard ports).
"""

import environ

from health.drain import DEFAULT_DRAIN_SECONDS

env = environ.Env()

# NGINX reads its own NGINX_* variables: see deploy/nginx/render.py.

# --- PgBouncer --------------------------------------------------------------------------
DEPLOY_PG_PRIMARY_HOST = env("PG_PRIMARY_HOST", default=None)
DEPLOY_PG_PRIMARY_PORT = env.int("PG_PRIMARY_PORT", default=5432)
DEPLOY_PG_REPLICA_HOST = env("DB_REPLICA_HOST", default=None)
DEPLOY_PG_REPLICA_PORT = env.int("PG_REPLICA_PORT", default=5432)
# PgBouncer runs next to the app on each server (docs/runbooks/deploy.md): loopback by design.
DEPLOY_PGBOUNCER_LISTEN_ADDR = env("PGBOUNCER_LISTEN_ADDR", default="127.0.0.1")
DEPLOY_PGBOUNCER_PORT = env.int("PGBOUNCER_PORT", default=6432)
DEPLOY_PGBOUNCER_AUTH_FILE = env("PGBOUNCER_AUTH_FILE", default=None)
DEPLOY_PGBOUNCER_POOL_SIZE = env.int("PGBOUNCER_POOL_SIZE", default=30)
DEPLOY_PGBOUNCER_MAX_CLIENT_CONN = env.int("PGBOUNCER_MAX_CLIENT_CONN", default=1000)
DEPLOY_PGBOUNCER_MAX_DB_CONNECTIONS = env.int("PGBOUNCER_MAX_DB_CONNECTIONS", default=30)
# A little over DB_STATEMENT_TIMEOUT_MS: PgBouncer cancels what a paused primary never answers.
DEPLOY_PGBOUNCER_QUERY_TIMEOUT = env.int("PGBOUNCER_QUERY_TIMEOUT", default=35)
# `*` forwarding any database name to the primary: off in production renderings.
DEPLOY_PGBOUNCER_CATCH_ALL = env.bool("PGBOUNCER_CATCH_ALL", default=False)
DEPLOY_PGBOUNCER_CLIENT_TLS_SSLMODE = env("PGBOUNCER_CLIENT_TLS_SSLMODE", default="disable")
DEPLOY_PGBOUNCER_CLIENT_TLS_CERT_FILE = env("PGBOUNCER_CLIENT_TLS_CERT_FILE", default="")
DEPLOY_PGBOUNCER_CLIENT_TLS_KEY_FILE = env("PGBOUNCER_CLIENT_TLS_KEY_FILE", default="")
# PostgreSQL is on other hosts: TLS with its certificate checked against the database's CA.
DEPLOY_PGBOUNCER_SERVER_TLS_SSLMODE = env("PGBOUNCER_SERVER_TLS_SSLMODE", default="verify-full")
DEPLOY_PGBOUNCER_SERVER_TLS_CA_FILE = env(
    "PGBOUNCER_SERVER_TLS_CA_FILE", default="/etc/pgbouncer/tls/postgres-ca.crt"
)

# --- PostgreSQL failover: Patroni, etcd and HAProxy (deploy/patroni/README.md) ------------
# This host's Patroni member and etcd member (empty: none on this host), every member as
# name=address, the network clients and replication come from, and the TLS files every part
# uses. Passwords are never rendered: Patroni reads PATRONI_SUPERUSER_PASSWORD,
# PATRONI_REPLICATION_PASSWORD, PATRONI_REWIND_PASSWORD and PATRONI_RESTAPI_PASSWORD itself.
DEPLOY_PATRONI_SCOPE = env("PATRONI_SCOPE", default="app-db")
DEPLOY_PATRONI_NAME = env("PATRONI_NAME", default="")
DEPLOY_PATRONI_MEMBERS = env.list("PATRONI_MEMBERS", default=[])
DEPLOY_ETCD_NAME = env("ETCD_NAME", default="")
DEPLOY_ETCD_MEMBERS = env.list("ETCD_MEMBERS", default=[])
DEPLOY_PATRONI_CLIENT_NETWORK = env("PATRONI_CLIENT_NETWORK", default="")
DEPLOY_PATRONI_TLS_CA_FILE = env("PATRONI_TLS_CA_FILE", default="")
DEPLOY_PATRONI_TLS_CERT_FILE = env("PATRONI_TLS_CERT_FILE", default="")
DEPLOY_PATRONI_TLS_KEY_FILE = env("PATRONI_TLS_KEY_FILE", default="")
DEPLOY_PATRONI_DATA_DIR = env("PATRONI_DATA_DIR", default="/var/lib/postgresql/15/patroni")
# HAProxy beside each PgBouncer: PgBouncer's primary is 127.0.0.1:<primary port>.
DEPLOY_HAPROXY_PRIMARY_PORT = env.int("HAPROXY_PRIMARY_PORT", default=5000)
DEPLOY_HAPROXY_REPLICA_PORT = env.int("HAPROXY_REPLICA_PORT", default=5001)

# --- systemd (one VM = one app server) --------------------------------------------------
DEPLOY_APP_DIR = env("DEPLOY_APP_DIR", default="/srv/app")
DEPLOY_VENV = env("DEPLOY_VENV", default="/srv/app/.venv")
DEPLOY_SERVICE_USER = env("DEPLOY_SERVICE_USER", default="app")
DEPLOY_ENV_FILE = env("DEPLOY_ENV_FILE", default="/etc/app/app.env")
# The server's private address, which the edge's upstream list names.
DEPLOY_GUNICORN_BIND = env("DEPLOY_GUNICORN_BIND", default=None)
DEPLOY_CELERY_CONCURRENCY = env.int("DEPLOY_CELERY_CONCURRENCY", default=2)
# The live-update server's private address (the edge's NGINX_WEBSOCKET_SERVERS names it) and its
# drain (the variable manage.py live_server reads), which the unit's stop timeout covers.
DEPLOY_LIVE_BIND = env("DEPLOY_LIVE_BIND", default=None)
DEPLOY_LIVE_DRAIN_SECONDS = env.float("LIVE_DRAIN_SECONDS", default=10.0)
# The same variables gunicorn.conf.py reads (the drain's default is health/drain.py's), so a
# unit's stop timeout covers the drain and then the graceful stop.
DEPLOY_DRAIN_SECONDS = env.float("HEALTH_DRAIN_SECONDS", default=DEFAULT_DRAIN_SECONDS)
DEPLOY_GUNICORN_GRACEFUL_TIMEOUT = env.int("GUNICORN_GRACEFUL_TIMEOUT", default=30)
# A Celery worker's warm shutdown finishes the tasks it holds; give the longest one this long.
DEPLOY_WORKER_STOP_TIMEOUT = env.int("DEPLOY_WORKER_STOP_TIMEOUT", default=120)

# --- Kubernetes -------------------------------------------------------------------------
# Each image by digest (repository@sha256:...): render_deploy refuses a tag alone.
DEPLOY_IMAGE = env("DEPLOY_IMAGE", default=None)
DEPLOY_PGBOUNCER_IMAGE = env("DEPLOY_PGBOUNCER_IMAGE", default=None)
DEPLOY_PGBOUNCER_EXPORTER_IMAGE = env("DEPLOY_PGBOUNCER_EXPORTER_IMAGE", default=None)
# Where the Redis nodes run: their NetworkPolicy goes there (deploy/k8s/redis).
DEPLOY_REDIS_NAMESPACE = env("DEPLOY_REDIS_NAMESPACE", default="data")
DEPLOY_NAMESPACE = env("DEPLOY_NAMESPACE", default=None)
# The address pool of the ingress controller's pods: the only proxies whose X-Forwarded-For the
# app believes (HEALTH_TRUSTED_PROXIES in the rendered app-config). Comma-separated CIDRs.
DEPLOY_INGRESS_PROXIES = env("DEPLOY_INGRESS_PROXIES", default=None)
# The admin answers no client address through the Ingress unless this switch opens it.
DEPLOY_ADMIN_PUBLIC = env.bool("DEPLOY_ADMIN_PUBLIC", default=False)
