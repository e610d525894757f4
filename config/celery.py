"""The Celery app, configured from Django settings under the ``CELERY_`` namespace."""

import os

from celery import Celery
from celery.signals import beat_init, worker_init

from config.liveness import WorkerLivenessFile
from config.process_metrics import serve_metrics

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# The worker's liveness file (config/liveness.py), written only where CELERY_LIVENESS_FILE is set.
app.steps["worker"].add(WorkerLivenessFile)
# A metrics port of the worker's or beat's own, where CELERY_METRICS_PORT is set (a pod).
worker_init.connect(serve_metrics, weak=False)
beat_init.connect(serve_metrics, weak=False)


@app.on_configure.connect
def _settings_or_exit(**kwargs: object) -> None:
    """Before Celery reads its configuration from the settings: a missing setting is one line
    naming it and exit 1 (``celery worker``/``beat``), not a traceback."""
    from config.startup import load_settings_or_exit

    load_settings_or_exit()


@app.task(name="config.ping")
def ping() -> dict[str, object]:
    """Answer with the server that ran the task; used by the cluster tests and health checks."""
    from django.conf import settings

    return {"server": settings.APP_SERVER_NAME, "pid": os.getpid()}
