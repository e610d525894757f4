"""The one way to declare a job: ``@job(...)`` turns a body into a Celery task that runs once per tick.

The task it makes is thin: it parses the tick beat stamped on the message and calls
``services.job_execute``, which takes the lock, writes the ledger, runs the body and records
the outcome. A body receives a ``JobContext`` and does its protected writes inside
``ctx.fenced()``, one transaction per batch, committed only while its lock is the newest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from celery import Task, shared_task
from django.conf import settings
from django.db.models import DateTimeField, Func

from replicas import PRIMARY_DB_ALIAS

if TYPE_CHECKING:
    from jobs.models import JobRun
    from locking.services import JobLock


class ClockTimestamp(Func):
    """PostgreSQL's ``clock_timestamp()``: the real time of the statement, not the transaction's start."""

    function = "clock_timestamp"
    template = "clock_timestamp()"
    output_field = DateTimeField()


@dataclass
class JobContext:
    """What a job body gets: its tick, the lock it runs under, its ledger row, its counters."""

    job: Job
    tick: datetime
    lock: JobLock
    run: JobRun
    counts: Counter[str] = field(default_factory=Counter)

    @contextmanager
    def fenced(self) -> Iterator[Counter[str]]:
        """One transaction on the primary that commits only while ``lock`` has the newest token.

        Yields a counter for this batch; it is added to the run's counts, and the run row's
        ``last_write_at`` is stamped, in the same transaction. Raises ``LockLost`` (or
        ``StaleLockError``, rolling back) when the lock is no longer this run's.
        """
        from jobs.models import JobRun

        batch: Counter[str] = Counter()
        with self.lock.fenced():
            yield batch
            merged = self.counts + batch
            JobRun.objects.using(PRIMARY_DB_ALIAS).filter(pk=self.run.pk).update(
                last_write_at=ClockTimestamp(), counts=dict(merged)
            )
        self.counts = merged


Body = Callable[[JobContext], None]


@dataclass(frozen=True)
class Job:
    name: str  # the beat schedule key, the ledger's job, and (prefixed) the lock name
    interval_setting: str
    body: Body

    @property
    def interval(self) -> float:
        return float(getattr(settings, self.interval_setting))

    @property
    def lock_name(self) -> str:
        return f"job:{self.name}"


JOBS: dict[str, Job] = {}


class JobTask(Task):
    """The base of every job's task: late ack, no result kept, one code path (``job_execute``)."""

    acks_late = True
    ignore_result = True
    job: Job

    def run_tick(self, tick: str | None) -> dict[str, Any]:
        from jobs.services import job_execute

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


def job(*, name: str, task_name: str, interval_setting: str) -> Callable[[Body], Task]:
    """Declare a job: ``body(ctx)`` runs at most once per tick of ``interval_setting`` seconds."""

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
