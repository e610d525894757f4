"""WSGI entry point used by gunicorn."""

import os

from django.core.wsgi import get_wsgi_application

from config.startup import APP_LOAD_ERROR, load_settings_or_exit
from config.unread_body import drain_unread_body

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
load_settings_or_exit(APP_LOAD_ERROR)

# A body a view did not read is read before the response, so NGINX's send never fails
# (config/unread_body.py); the balancer's probes are answered in front of Django (health/wsgi.py).
django_application = get_wsgi_application()

from health.wsgi import fast_probes  # noqa: E402 (after django.setup(): it loads the health app)

application = drain_unread_body(fast_probes(django_application))
