"""Settings shared by every environment. Values come from the environment (django-environ)."""

import socket
from pathlib import Path

import environ

from config.logging import logging_config
from config.redis_urls import (
    broker_redis_url,
    cache_location,
    celery_transport_options,
    celery_url,
    lock_redis_urls,
    redis_db_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()

# --- Core -------------------------------------------------------------------------------
DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="local-only-insecure-key-never-used-in-production")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

# Every server runs the same code; this name tells them apart in logs, locks and job runs.
APP_SERVER_NAME = env("APP_SERVER_NAME", default=socket.gethostname())

TIME_ZONE = "UTC"
USE_TZ = True
LANGUAGE_CODE = "en-us"
USE_I18N = False

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    # The admin, on a site that asks staff for a TOTP code when ADMIN_TWO_FACTOR is on (logins).
    "logins.apps.AdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Two-factor login for the admin: devices and their verification (logins/admin_site.py).
    "django_otp",
    "django_otp.plugins.otp_totp",
    # Its templates and static files: /api/docs loads Swagger UI from here, not from a CDN that
    # the edge's CSP (default-src 'self') blocks.
    "ninja",
    "health",
    "logins",
    "locking",
    "jobs",
    "replicas",
    "messaging",
    "live",
    "deploy",
]

MIDDLEWARE = [
    "config.middleware.ServedByMiddleware",
    # Answers /health* before host validation, sessions, auth and CSRF (health/middleware.py).
    "health.middleware.HealthProbeMiddleware",
    # Request id, one JSON log line and the HTTP metrics per request (config/observability.py).
    "config.observability.RequestObservabilityMiddleware",
    # Static files (admin, API docs) from STATIC_ROOT, answered before routing, sessions or a
    # database; content-hashed names are cached for a year (ADR 0012).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # One routing unit per request; read-your-writes by WAL position (replicas/middleware.py).
    "replicas.middleware.ReadYourWritesMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): whether this session passed a one-time password (the admin).
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# `manage.py collectstatic` writes every file here with its content hash in the name (and gzip
# copies); WhiteNoise serves them from every app server, so any server can answer any asset.
STATIC_URL = "static/"
STATIC_ROOT = env("DJANGO_STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# The lockout backend goes first: a locked account is refused before any password is checked.
AUTHENTICATION_BACKENDS = [
    "logins.backends.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# --- Databases --------------------------------------------------------------------------
# ``default`` is the primary reached through PgBouncer in transaction mode, so: no
# server-side cursors, no server-side prepared statements, no session state.
# ``replica`` is the streaming replica (read-only).
DB_NAME = env("DB_NAME", default="app")
DB_USER = env("DB_USER", default="app")
DB_PASSWORD = env("DB_PASSWORD", default="app-local-password")
DB_CONNECT_TIMEOUT = env.int("DB_CONNECT_TIMEOUT", default=3)
# How long a new connection to the primary keeps trying while the database fails over (about 10 s
# locally); longer holds more requests in the app servers' threads (replicas/backend/base.py).
DB_FAILOVER_WAIT_SECONDS = env.float("DB_FAILOVER_WAIT_SECONDS", default=5.0)
# Set on the app's role by every `migrate` (deploy/database.py): PgBouncer drops connection
# options, so a role setting is what reaches every server session. A statement running longer
# is cancelled; one waiting longer for a lock gives up. A migration that needs more runs
# `SET LOCAL statement_timeout = 0` first (RunSQL, inside its transaction).
DB_STATEMENT_TIMEOUT_MS = env.int("DB_STATEMENT_TIMEOUT_MS", default=30_000)
DB_LOCK_TIMEOUT_MS = env.int("DB_LOCK_TIMEOUT_MS", default=5_000)


def _database(
    *, host: str, port: int | str, health_checks: bool = True, load_balance_hosts: str | None = None
) -> dict[str, object]:
    options: dict[str, object] = {
        "prepare_threshold": None,
        "connect_timeout": DB_CONNECT_TIMEOUT,
        "application_name": f"app:{APP_SERVER_NAME}",
    }
    if load_balance_hosts:
        options["load_balance_hosts"] = load_balance_hosts
    return {
        # Django's PostgreSQL backend (psycopg 3) plus query/connection counters (ADR 0009) and a
        # bounded wait for a failing-over primary (ADR 0017).
        "ENGINE": "replicas.backend",
        "NAME": DB_NAME,
        "USER": DB_USER,
        "PASSWORD": DB_PASSWORD,
        "HOST": host,
        "PORT": port,
        "CONN_MAX_AGE": env.int("DB_CONN_MAX_AGE", default=60),
        "CONN_HEALTH_CHECKS": health_checks,
        "DISABLE_SERVER_SIDE_CURSORS": True,
        "OPTIONS": options,
    }


def _one_host_per_port(host: str, port: str) -> str:
    """libpq takes one port for every host, or one per host: a single host with several ports
    (the local cluster's PgBouncers, all on loopback) is that host once per port."""
    ports = port.split(",")
    return ",".join([host] * len(ports)) if "," not in host and len(ports) > 1 else host


# The primary through PgBouncer. DB_HOST and DB_PORT may each list several PgBouncers,
# comma-separated, for a libpq multi-host string (ADR 0018): a connection tries them in order (or
# shuffled, DB_LOAD_BALANCE_HOSTS=random) and skips one that refuses, so losing one PgBouncer
# fails only the requests in flight on it. A connection kept between requests that died with its
# PgBouncer fails Django's health check at the next request and is replaced there.
DB_PORT = env("DB_PORT", default=env("PGBOUNCER_PORT", default="26432"))
DB_REPLICA_PORT = env("DB_REPLICA_PORT", default=env("PG_REPLICA_PORT", default="25433"))
DATABASES = {
    "default": _database(
        host=_one_host_per_port(env("DB_HOST", default="127.0.0.1"), DB_PORT),
        port=DB_PORT,
        load_balance_hosts=env("DB_LOAD_BALANCE_HOSTS", default=""),  # libpq 16+ only
    ),
    # The replica keeps Django's health check (a SELECT 1 before a request's first query):
    # replicas.middleware reruns only safe methods on the primary, so without it a connection
    # that died with a restarted replica fails the next POST that reads (a login) with a 500.
    # DB_REPLICA_HOST / DB_REPLICA_PORT may list several routers too (each HAProxy's replica port).
    "replica": _database(
        host=_one_host_per_port(env("DB_REPLICA_HOST", default="127.0.0.1"), DB_REPLICA_PORT),
        port=DB_REPLICA_PORT,
        health_checks=env.bool("DB_REPLICA_CONN_HEALTH_CHECKS", default=True),
        load_balance_hosts=env("DB_LOAD_BALANCE_HOSTS", default=""),
    ),
}

# --- Redis: the broker/cache node and the lock nodes -----------------------------------
# Node addresses from BROKER_REDIS_URL / LOCK_REDIS_URLS (redis:// or rediss://), each role's ACL
# user and password from BROKER_REDIS_USERNAME/_PASSWORD and LOCK_REDIS_USERNAME/_PASSWORD
# (config/redis_urls.py). With BROKER_SENTINELS (host:port, comma-separated) the broker is the
# master Sentinel names BROKER_SENTINEL_MASTER, and BROKER_REDIS_URL is a redis+sentinel:// URL
# (ADR 0019).
BROKER_REDIS_URL = broker_redis_url(env)
LOCK_REDIS_URLS = lock_redis_urls(env)
# Replicas that must confirm (WAIT) a write whose loss in a failover would be unsafe (the token
# revocation generation, ADR 0019): 1 under Sentinel, 0 for a single node (nothing to wait for).
BROKER_REPLICAS_TO_CONFIRM = env.int(
    "BROKER_REPLICAS_TO_CONFIRM", default=1 if BROKER_REDIS_URL.startswith("redis+sentinel") else 0
)

# Cache and probe results only (DESIGN decision 7): never IGNORE_EXCEPTIONS here.
CACHES = {
    "default": {
        # django-redis plus get/hit/miss counters (ADR 0009).
        "BACKEND": "django_prometheus.cache.backends.redis.RedisCache",
        **cache_location(BROKER_REDIS_URL, 1, {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1}),
        "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="app"),
    }
}

# --- Celery -----------------------------------------------------------------------------
# Broker and results on database 0 of the broker; through Sentinel, kombu's sentinel:// list and
# the master's name in the transport options (config/redis_urls.py).
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=celery_url(redis_db_url(BROKER_REDIS_URL, 0)))
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=celery_url(redis_db_url(BROKER_REDIS_URL, 0)))
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = celery_transport_options(
    BROKER_REDIS_URL, socket_connect_timeout=2, socket_timeout=5
)
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = celery_transport_options(BROKER_REDIS_URL)
# The schedule itself lives in components/jobs.py.

# --- Logging ----------------------------------------------------------------------------
# One JSON object per line with the server, the request id or Celery task id (config/logging.py).
LOG_LEVEL = env("DJANGO_LOG_LEVEL", default="INFO")
LOGGING = logging_config(
    server_name=APP_SERVER_NAME, level=LOG_LEVEL, json=env.bool("DJANGO_LOG_JSON", default=True)
)
# Celery keeps the LOGGING above (JSON, task ids) instead of replacing the root logger's handlers.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Per-integration sections (one file each) -------------------------------------------
from config.settings.components.deploy import *  # noqa: E402,F403
from config.settings.components.health import *  # noqa: E402,F403
from config.settings.components.jobs import *  # noqa: E402,F403
from config.settings.components.live import *  # noqa: E402,F403
from config.settings.components.locking import *  # noqa: E402,F403
from config.settings.components.logins import *  # noqa: E402,F403
from config.settings.components.messaging import *  # noqa: E402,F403
from config.settings.components.observability import *  # noqa: E402,F403
from config.settings.components.replicas import *  # noqa: E402,F403
