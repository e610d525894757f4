"""The one way to declare a job: ``@job(...)`` turns a body into a Celery task that runs once per tick.

The task it makes is thin: it parses the tick beat stamped on the message and calls
``services.job_execute``, which takes the lock, writes the ledger, runs the body and records
the outcome. The body gets a ``JobContext`` (``jobs.context``).

Any app declares its jobs with ``@job`` in a module its ``AppConfig.ready()`` imports (messaging
does it in ``messaging/jobs.py``), so every process (web, worker, beat, commands) knows every
job in ``JOBS`` from start-up; beat's schedule names the jobs' tasks in
``config/settings/components/jobs.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from celery import Task, shared_task
from django.conf import settings

from jobs.context import Body, Job
from jobs.services import job_execute

JOBS: dict[str, Job] = {}


class JobTask(Task):
    """The base of every job's task: late ack, no result kept, one code path (``job_execute``)."""

    acks_late = True
    ignore_result = True
    job: Job

    def run_tick(self, tick: str | None) -> dict[str, Any]:
        report = job_execute(
            job=self.job,
            tick=datetime.fromisoformat(tick) if tick else None,
            task_id=self.request.id or "",
        )
        if report.retry_in is not None and self.request.retries + 1 < settings.JOBS_MAX_ATTEMPTS:
            # The tick's run failed: deliver it again after the backoff (the ledger decides
            # whether it still needs running by then). Expiry is pushed out past the countdown.
            raise self.retry(
                countdown=report.retry_in,
                expires=report.retry_in + max(1.0, self.job.interval),
                max_retries=settings.JOBS_MAX_ATTEMPTS,
            )
        return report.as_dict()


def job(*, name: str, task_name: str = "", interval_setting: str = "") -> Callable[[Body], Task]:
    """Declare a job: ``body(ctx)`` runs at most once per tick of ``interval_setting`` seconds.

    The names follow the job's: ``@job(name="messages-sweep")`` is the task
    ``jobs.messages_sweep`` (what beat's schedule sends) ticking every
    ``settings.JOBS_MESSAGES_SWEEP_INTERVAL_SECONDS``; ``task_name`` and ``interval_setting``
    name others where a job needs them.
    """
    snake = name.replace("-", "_")
    task_name = task_name or f"jobs.{snake}"
    interval_setting = interval_setting or f"JOBS_{snake.upper()}_INTERVAL_SECONDS"

    def decorate(body: Body) -> Task:
        spec = Job(name=name, interval_setting=interval_setting, body=body)
        JOBS[name] = spec

        def run(self: JobTask, tick: str | None = None) -> dict[str, Any]:
            return self.run_tick(tick)

        run.__name__ = body.__name__
        run.__doc__ = body.__doc__
        task: Task = shared_task(name=task_name, bind=True, base=JobTask, job=spec)(run)
        return task

    return decorate
