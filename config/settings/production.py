"""Production settings: no defaults for secrets; refuses to start without them."""

from django.core.exceptions import ImproperlyConfigured

from config.settings.base import *  # noqa: F403
from config.settings.base import env


def _required(name: str) -> str:
    value = env.str(name, default="")
    if not value:
        raise ImproperlyConfigured(f"Set the {name} environment variable (production has no default).")
    return value


DEBUG = False
SECRET_KEY = _required("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = [host.strip() for host in _required("DJANGO_ALLOWED_HOSTS").split(",") if host.strip()]
DB_PASSWORD = _required("DB_PASSWORD")
for _alias in DATABASES:  # noqa: F405
    DATABASES[_alias]["PASSWORD"] = DB_PASSWORD  # noqa: F405
MESSAGING_WEBHOOK_SECRET = _required("MESSAGING_WEBHOOK_SECRET")
# Real SMS unless told otherwise; the development gateway only records.
MESSAGING_SMS_BACKEND = env("MESSAGING_SMS_BACKEND", default="messaging.gateway.HttpSmsGateway")
# Test-only endpoints stay off whatever the environment says.
HEALTH_DEBUG_SLOW_ENDPOINT = False
REPLICAS_DEBUG_ENDPOINTS = False

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
