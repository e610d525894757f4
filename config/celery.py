"""The Celery app, configured from Django settings under the ``CELERY_`` namespace."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="config.ping")
def ping() -> dict[str, object]:
    """Answer with the server that ran the task; used by the cluster tests and health checks."""
    from django.conf import settings

    return {"server": settings.APP_SERVER_NAME, "pid": os.getpid()}
