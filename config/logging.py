"""Structured logs: one JSON object per line, carrying the request id or the Celery task id.

Every line names the server (``APP_SERVER_NAME``) and process, so the logs of many servers can
be merged and still read. A request's id comes from NGINX (``X-Request-ID``), is kept in a
context variable for the length of the request by
:class:`config.observability.RequestObservabilityMiddleware`, and is stamped on every line
logged while it is served, not just the per-request summary line. Inside a Celery task the
task's id and name are stamped instead. Anything passed as ``extra={...}`` (a job's tick, a
lock's fencing token, an outcome) becomes a JSON field of its own.
"""

import logging
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


class ContextFilter(logging.Filter):
    """Add the current request's id, or the running Celery task's id and name, to a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = request_id_var.get()
        if request_id and not hasattr(record, "request_id"):
            record.request_id = request_id
        task = _current_celery_task()
        if task is not None and not hasattr(record, "task_id"):
            record.task_id = task.request.id
            record.task_name = task.name
        return True


def _current_celery_task() -> Any:
    # Imported here: the formatter is configured before Celery's app exists.
    from celery._state import get_current_task

    task = get_current_task()
    if task is None or getattr(task.request, "id", None) is None:
        return None
    return task


def logging_config(*, server_name: str, level: str, json: bool = True) -> dict[str, Any]:
    """The ``LOGGING`` dict: everything to stderr (the cluster's per-process log, the journal,
    the container log), one JSON object per line."""
    formatter: dict[str, Any] = {
        "()": JsonFormatter,
        "fmt": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
        "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger", "process": "pid"},
        "static_fields": {"server": server_name},
        "datefmt": "%Y-%m-%dT%H:%M:%S%z",
    }
    plain = {"format": "%(asctime)s %(levelname)s %(name)s [" + server_name + "] %(message)s"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFilter}},
        "formatters": {"json": formatter, "plain": plain},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json" if json else "plain",
                "filters": ["context"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "INFO"},
            # The request line below replaces Django's own 4xx/5xx warnings; errors still log.
            "django.request": {"level": "ERROR"},
            "django.server": {"level": "ERROR"},
        },
    }
