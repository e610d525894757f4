"""Settings for the ``messaging`` app. Every value comes from the environment."""

import environ
from django.core.exceptions import ImproperlyConfigured

env = environ.Env()

# --- SMS gateway ------------------------------------------------------------------------
# The development gateway records what it would send in a table (see the admin); the HTTP
# gateway talks to a Twilio-style REST API. Production sets the backend and credentials.
MESSAGING_SMS_BACKEND = env("MESSAGING_SMS_BACKEND", default="messaging.gateway.DevelopmentGateway")
MESSAGING_SMS_API_BASE_URL = env("MESSAGING_SMS_API_BASE_URL", default="https://api.twilio.com")
MESSAGING_SMS_ACCOUNT_SID = env("MESSAGING_SMS_ACCOUNT_SID", default="")
MESSAGING_SMS_AUTH_TOKEN = env("MESSAGING_SMS_AUTH_TOKEN", default="")
MESSAGING_SMS_CONNECT_TIMEOUT = env.float("MESSAGING_SMS_CONNECT_TIMEOUT", default=3.05)
MESSAGING_SMS_READ_TIMEOUT = env.float("MESSAGING_SMS_READ_TIMEOUT", default=10.0)
# Attempts in all (first try included) on a 5xx, a timeout or a refused connection.
MESSAGING_SMS_MAX_ATTEMPTS = env.int("MESSAGING_SMS_MAX_ATTEMPTS", default=3)
MESSAGING_SMS_BACKOFF_SECONDS = env.float("MESSAGING_SMS_BACKOFF_SECONDS", default=0.5)
MESSAGING_SMS_BACKOFF_MAX_SECONDS = env.float("MESSAGING_SMS_BACKOFF_MAX_SECONDS", default=5.0)
# Used when a church has no linked number of its own (+15005550006 is Twilio's test number).
MESSAGING_SMS_DEFAULT_FROM = env("MESSAGING_SMS_DEFAULT_FROM", default="+15005550006")
MESSAGING_SMS_STATUS_CALLBACK_URL = env("MESSAGING_SMS_STATUS_CALLBACK_URL", default="")
# The request header the provider deduplicates sends on (e.g. "Idempotency-Key"); empty when it
# has none. With one, a message whose worker died waiting for the provider is tried again with
# the same key; without, it is set aside for review and never resent (ADR 0011).
MESSAGING_SMS_IDEMPOTENCY_HEADER = env("MESSAGING_SMS_IDEMPOTENCY_HEADER", default="")
# A message still queued this long after it was created (or last enqueued) is enqueued again by
# the messages-sweep job: the broker was down at commit, or its task was lost. Keep it at most
# MESSAGING_SWEEP_INTERVAL_SECONDS, so a left-behind message goes out within two sweeps.
MESSAGING_QUEUED_STALE_SECONDS = env.float("MESSAGING_QUEUED_STALE_SECONDS", default=60.0)
# Messages per sweep batch (each batch one fenced transaction).
MESSAGING_SWEEP_BATCH = env.int("MESSAGING_SWEEP_BATCH", default=1000)
# A message claimed for sending (status "sending") this long ago without an answer recorded is
# taken to have lost its worker. Well above the longest provider call with its retries.
MESSAGING_SENDING_STUCK_SECONDS = env.float("MESSAGING_SENDING_STUCK_SECONDS", default=300.0)

# --- Scheduled jobs (messaging/jobs.py) ------------------------------------------------------
# Each job runs once per tick of its interval across all servers (the jobs framework, ADR 0008).
# Until the next release each setting also reads its former JOBS_* variable when it is unset.


def _env_float(name: str, former: str, default: float) -> float:
    return env.float(name, default=env.float(former, default=default))


def _env_int(name: str, former: str, default: int) -> int:
    return env.int(name, default=env.int(former, default=default))


MESSAGING_RECURRING_MESSAGES_INTERVAL_SECONDS = _env_float(
    "MESSAGING_RECURRING_MESSAGES_INTERVAL_SECONDS", "JOBS_RECURRING_MESSAGES_INTERVAL_SECONDS", 60.0
)
# Re-enqueues messages left queued (broker down at commit) or stuck in sending.
MESSAGING_SWEEP_INTERVAL_SECONDS = _env_float(
    "MESSAGING_SWEEP_INTERVAL_SECONDS", "JOBS_MESSAGES_SWEEP_INTERVAL_SECONDS", 60.0
)
MESSAGING_PHONE_LINKING_RECOVERY_INTERVAL_SECONDS = _env_float(
    "MESSAGING_PHONE_LINKING_RECOVERY_INTERVAL_SECONDS", "JOBS_PHONE_LINKING_RECOVERY_INTERVAL_SECONDS", 300.0
)
# recurring-messages: recipients per fenced transaction (one fence check and commit each).
MESSAGING_RECURRING_MESSAGES_BATCH_SIZE = _env_int(
    "MESSAGING_RECURRING_MESSAGES_BATCH_SIZE", "JOBS_RECURRING_MESSAGES_BATCH_SIZE", 500
)
# phone-linking-recovery: a link still pending this long after its creation (or its last
# attempt) is retried, at most MAX_ATTEMPTS times in all, waiting BACKOFF * 2**(attempt-1)
# seconds (at most BACKOFF_MAX) between attempts; BATCH links per run.
MESSAGING_PHONE_LINK_STUCK_AFTER_SECONDS = _env_float(
    "MESSAGING_PHONE_LINK_STUCK_AFTER_SECONDS", "JOBS_PHONE_LINK_STUCK_AFTER_SECONDS", 600.0
)
MESSAGING_PHONE_LINK_MAX_ATTEMPTS = _env_int(
    "MESSAGING_PHONE_LINK_MAX_ATTEMPTS", "JOBS_PHONE_LINK_MAX_ATTEMPTS", 5
)
MESSAGING_PHONE_LINK_BACKOFF_SECONDS = _env_float(
    "MESSAGING_PHONE_LINK_BACKOFF_SECONDS", "JOBS_PHONE_LINK_BACKOFF_SECONDS", 60.0
)
MESSAGING_PHONE_LINK_BACKOFF_MAX_SECONDS = _env_float(
    "MESSAGING_PHONE_LINK_BACKOFF_MAX_SECONDS", "JOBS_PHONE_LINK_BACKOFF_MAX_SECONDS", 3600.0
)
MESSAGING_PHONE_LINK_BATCH = _env_int("MESSAGING_PHONE_LINK_BATCH", "JOBS_PHONE_LINK_BATCH", 100)

# --- Webhooks ---------------------------------------------------------------------------
# Shared with the provider: it signs each callback's timestamp and body with HMAC-SHA256 under
# this secret (messaging/inbound/webhooks.py). During a rotation the provider may still sign with the
# old one: put it in the _PREVIOUS variable until the provider has switched, then remove it.
MESSAGING_WEBHOOK_SECRET = env("MESSAGING_WEBHOOK_SECRET", default="local-webhook-secret")
MESSAGING_WEBHOOK_SECRET_PREVIOUS = env("MESSAGING_WEBHOOK_SECRET_PREVIOUS", default="")
# A callback signed further than this from our clock (either way) is refused: a captured one
# cannot be replayed later, and one replayed sooner is caught by its signature being seen.
MESSAGING_WEBHOOK_MAX_SKEW_SECONDS = env.float("MESSAGING_WEBHOOK_MAX_SKEW_SECONDS", default=300.0)

# --- API --------------------------------------------------------------------------------
# /api/openapi.json and /api/docs: off unless turned on (local settings turn them on).
MESSAGING_API_DOCS = env.bool("MESSAGING_API_DOCS", default=False)
# How long a bearer token lives after login. A new password, a deactivation or a move to another
# church ends a user's tokens sooner; so does POST /auth/logout-all (messaging/tokens/signals.py).
MESSAGING_API_TOKEN_TTL_HOURS = env.int("MESSAGING_API_TOKEN_TTL_HOURS", default=24 * 7)
# Each process remembers a token it checked on the primary for at most this long; any logout,
# deactivation or token deletion drops every server's copies at once (messaging/tokens/cache.py,
# ADR 0010). 0 turns the cache off: every request asks the primary.
MESSAGING_TOKEN_CACHE_SECONDS = env.float("MESSAGING_TOKEN_CACHE_SECONDS", default=60.0)
# Phone numbers written without "+" are read as numbers of this region.
MESSAGING_DEFAULT_PHONE_REGION = env("MESSAGING_DEFAULT_PHONE_REGION", default="US")
# The largest request body Django reads; larger ones get a JSON 413 from the API.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=256 * 1024)

# --- Demo data (seed_demo, ensure_demo_user) ------------------------------------------------
MESSAGING_DEMO_USERNAME = env("MESSAGING_DEMO_USERNAME", default="demo")
MESSAGING_DEMO_PASSWORD = env("MESSAGING_DEMO_PASSWORD", default="demo-local-password")

# --- Retention (run by the jobs framework's hourly `retention` job) ---------------------------
# Idempotency records (Idempotency-Key of POST /api/messages) are kept this many days: a retry
# with the same key later than that sends again. Expired API tokens are deleted this many days
# after they expired.
MESSAGING_RETENTION_IDEMPOTENT_REQUESTS_DAYS = env.float(
    "MESSAGING_RETENTION_IDEMPOTENT_REQUESTS_DAYS", default=7.0
)
MESSAGING_RETENTION_EXPIRED_TOKENS_DAYS = env.float("MESSAGING_RETENTION_EXPIRED_TOKENS_DAYS", default=1.0)
if MESSAGING_RETENTION_IDEMPOTENT_REQUESTS_DAYS < 1:
    raise ImproperlyConfigured(
        "MESSAGING_RETENTION_IDEMPOTENT_REQUESTS_DAYS must be at least 1 (clients retry within minutes),"
        f" got {MESSAGING_RETENTION_IDEMPOTENT_REQUESTS_DAYS:g}"
    )
if MESSAGING_RETENTION_EXPIRED_TOKENS_DAYS < 0:
    raise ImproperlyConfigured(
        "MESSAGING_RETENTION_EXPIRED_TOKENS_DAYS must not be negative,"
        f" got {MESSAGING_RETENTION_EXPIRED_TOKENS_DAYS:g}"
    )
