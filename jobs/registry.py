"""The one way to declare a job: ``@job(...)`` turns a body into a Celery task that runs once per
tick, and gives beat's schedule its entry.

The task it makes is thin: it parses the tick beat stamped on the message and calls
``services.job_execute``, which takes the lock, writes the ledger, runs the body and records
the outcome. The body gets a ``JobContext`` (``jobs.context``).

Any app declares its jobs with ``@job`` in a module its ``AppConfig.ready()`` imports (messaging
does it in ``messaging/jobs.py``), so every process (web, worker, beat, commands) knows every
job in ``JOBS`` from start-up, and beat's schedule (``jobs.schedules.BEAT_SCHEDULE``, the
``CELERY_BEAT_SCHEDULE`` setting) has an entry for each: no hand-written schedule to keep in step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from celery import Task, shared_task
from django.conf import settings

from jobs.context import Body, Job
from jobs.schedules import BEAT_SCHEDULE
from jobs.services import job_execute

JOBS: dict[str, Job] = BEAT_SCHEDULE.jobs


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


def job(
    *, name: str, interval: str, expires: float = 0.9, aliases: Sequence[str] = ()
) -> Callable[[Body], Task]:
    """Declare a job: ``body(ctx)`` runs at most once per tick of ``settings.<interval>`` seconds.

    Its task is named in the namespace of the app that declares it: ``@job(name="messages-sweep")``
    in ``messaging/jobs.py`` is ``messaging.messages_sweep``, what beat's entry
    ``messages-sweep`` sends. A send still undelivered after ``expires`` of an interval is
    dropped (the next tick's catch-up runs it). ``aliases`` are former task names, registered
    too so that deliveries a not-yet-upgraded beat sends by an old name still run the job.
    """

    def decorate(body: Body) -> Task:
        app_label = body.__module__.split(".")[0]
        spec = Job(
            name=name,
            interval_setting=interval,
            body=body,
            task_name=f"{app_label}.{name.replace('-', '_')}",
            expires=expires,
        )
        JOBS[name] = spec

        def run(self: JobTask, tick: str | None = None) -> dict[str, Any]:
            return self.run_tick(tick)

        run.__name__ = body.__name__
        run.__doc__ = body.__doc__
        for alias in aliases:
            shared_task(name=alias, bind=True, base=JobTask, job=spec)(run)
        task: Task = shared_task(name=spec.task_name, bind=True, base=JobTask, job=spec)(run)
        return task

    return decorate
