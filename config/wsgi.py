"""WSGI entry point used by gunicorn."""

import os

from django.core.wsgi import get_wsgi_application

from config.startup import APP_LOAD_ERROR, load_settings_or_exit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
load_settings_or_exit(APP_LOAD_ERROR)

application = get_wsgi_application()
