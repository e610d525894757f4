"""Production settings: no defaults for secrets; refuses to start without them.

Every missing variable is collected and named in one ``ImproperlyConfigured`` message; the entry
points (manage.py, config/wsgi.py, config/celery.py) print it as one line and exit, no traceback.
"""

from django.core.exceptions import ImproperlyConfigured

from config.redis_urls import has_password
from config.settings.base import *  # noqa: F403
from config.settings.base import env

# What an operator must give (docs/runbooks/deploy.md lists them with their meaning).
REQUIRED_VARIABLES = (
    "DJANGO_SECRET_KEY",
    "DJANGO_ALLOWED_HOSTS",
    "DB_PASSWORD",
    "MESSAGING_WEBHOOK_SECRET",
    # Operator endpoints: the monitoring token, and the proxies whose X-Forwarded-For is believed
    # (NGINX's or the ingress controller's addresses). Never every private range by default.
    "HEALTH_DETAILED_TOKEN",
    "HEALTH_TRUSTED_PROXIES",
)
_missing = [name for name in REQUIRED_VARIABLES if not env.str(name, default="").strip()]
# Redis nodes run with ACL users: every URL needs a password, from its role's variable (a
# Secret) or written into the URL itself.
if not has_password(BROKER_REDIS_URL):  # noqa: F405
    _missing.append("BROKER_REDIS_PASSWORD")
if not all(has_password(url) for url in LOCK_REDIS_URLS):  # noqa: F405
    _missing.append("LOCK_REDIS_PASSWORD")
if _missing:
    raise ImproperlyConfigured(
        f"Set the {', '.join(_missing)} environment variable{'s' if len(_missing) > 1 else ''} "
        "(production has no default)."
    )

DEBUG = False
SECRET_KEY = env.str("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = [host.strip() for host in env.str("DJANGO_ALLOWED_HOSTS").split(",") if host.strip()]
DB_PASSWORD = env.str("DB_PASSWORD")
for _alias in DATABASES:  # noqa: F405
    DATABASES[_alias]["PASSWORD"] = DB_PASSWORD  # noqa: F405
    # A connection that leaves the host (the replica, or PgBouncer across a pod network) is
    # encrypted and the server's name checked against DB_SSLROOTCERT; loopback needs neither.
    # HOST may list several PgBouncers (ADR 0018): one that is not on loopback asks for TLS on all.
    _hosts = str(DATABASES[_alias]["HOST"]).split(",")  # noqa: F405
    if any(host.strip() not in ("127.0.0.1", "::1", "localhost") for host in _hosts):
        _options: dict[str, object] = DATABASES[_alias]["OPTIONS"]  # type: ignore[assignment]  # noqa: F405
        _options["sslmode"] = env.str("DB_SSLMODE", default="verify-full")
        _options["sslrootcert"] = env.str("DB_SSLROOTCERT", default="/etc/app/tls/db-ca.crt")
MESSAGING_WEBHOOK_SECRET = env.str("MESSAGING_WEBHOOK_SECRET")
# No demo password unless the operator gives one: a demo user seeded without it cannot log in
# (set_password(None)), instead of logging in with a password printed in the README.
MESSAGING_DEMO_PASSWORD = env.str("MESSAGING_DEMO_PASSWORD", default=None)
# Real SMS unless told otherwise; the development gateway only records.
MESSAGING_SMS_BACKEND = env("MESSAGING_SMS_BACKEND", default="messaging.gateway.HttpSmsGateway")
# The admin asks every staff user for a TOTP code after the password, whatever the environment
# says (logins/admin_site.py); manage.py admin_totp gives a user a device.
ADMIN_TWO_FACTOR = True
# Test-only endpoints stay off whatever the environment says.
HEALTH_DEBUG_SLOW_ENDPOINT = False
REPLICAS_DEBUG_ENDPOINTS = False

# Operator endpoints: a client counts as internal only from loopback unless the operator lists
# networks; monitoring from elsewhere presents the token. Behind an ingress every request comes
# from a private address, so "all private ranges" would mean "everyone".
HEALTH_DETAILED_TOKEN = env.str("HEALTH_DETAILED_TOKEN")
HEALTH_TRUSTED_PROXIES = env.list("HEALTH_TRUSTED_PROXIES")
HEALTH_DETAILED_ALLOWED_NETWORKS = env.list(
    "HEALTH_DETAILED_ALLOWED_NETWORKS", default=["127.0.0.0/8", "::1/128"]
)
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=["127.0.0.0/8", "::1/128"])
METRICS_TOKEN = env.str("METRICS_TOKEN", default=HEALTH_DETAILED_TOKEN)

# TLS ends at NGINX, which sets X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^health(/|$)"]  # probes speak plain HTTP to the pod
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = 31536000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
