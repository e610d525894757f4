"""What an operator does with the jobs (``manage.py jobs``): see them, pause, resume, run one now.

Reads and writes go to the primary, like the rest of the ledger. Running a job now goes through
``services.job_execute``, the path of every beat delivery: the same lock and the same ledger
row unique on (job, tick), so a manual run and a beat delivery of the same tick, or two manual
runs, run it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from config.databases import PRIMARY_DB_ALIAS
from jobs import selectors
from jobs.context import Job
from jobs.models import RUN_OUTCOMES, JobPause, JobRun
from jobs.registry import JOBS
from jobs.schedules import tick_of
from jobs.services import JobReport, job_execute


class UnknownJob(LookupError):
    """No job of that name is registered."""


class JobPaused(RuntimeError):
    """The job is paused: nothing runs it, an operator's run included."""


@dataclass(frozen=True)
class JobOverview:
    name: str
    interval: float
    last_tick: datetime | None  # the newest tick with a run (of any outcome)
    last_outcome: str  # that run's outcome, "" if none
    next_tick: datetime
    pause: JobPause | None


def job_get(name: str) -> Job:
    try:
        return JOBS[name]
    except KeyError:
        known = ", ".join(sorted(JOBS)) or "none"
        raise UnknownJob(f"unknown job {name!r}; the jobs are: {known}") from None


def jobs_overview(*, now: datetime | None = None) -> list[JobOverview]:
    now = now or timezone.now()
    pauses = {pause.job: pause for pause in JobPause.objects.using(PRIMARY_DB_ALIAS).all()}
    overview = []
    for name in sorted(JOBS):
        job = JOBS[name]
        last = (
            JobRun.objects.using(PRIMARY_DB_ALIAS)
            .filter(job=name, superseded=False, outcome__in=[o.value for o in RUN_OUTCOMES])
            .order_by("-tick", "-id")
            .first()
        )
        overview.append(
            JobOverview(
                name=name,
                interval=job.interval,
                last_tick=last.tick if last else None,
                last_outcome=last.outcome if last else "",
                next_tick=tick_of(now, job.interval) + timedelta(seconds=job.interval),
                pause=pauses.get(name),
            )
        )
    return overview


def job_history(name: str, *, limit: int = 20) -> list[JobRun]:
    """The job's newest ledger rows, every delivery (runs and skips), newest first."""
    job_get(name)
    return list(JobRun.objects.using(PRIMARY_DB_ALIAS).filter(job=name).order_by("-started", "-id")[:limit])


def job_pause(name: str, *, by: str, reason: str = "") -> JobPause:
    """Pause ``name`` on every server from its next delivery on. Pausing twice keeps the first."""
    job_get(name)
    try:
        with transaction.atomic(using=PRIMARY_DB_ALIAS):
            return JobPause.objects.using(PRIMARY_DB_ALIAS).create(
                job=name, paused_by=by[:150], paused_at=timezone.now(), reason=reason
            )
    except IntegrityError:
        existing = selectors.job_pause_active(job=name)
        assert existing is not None  # the unique row that refused ours
        return existing


def job_resume(name: str) -> bool:
    """Resume ``name``; ``False`` if it was not paused."""
    job_get(name)
    deleted, _ = JobPause.objects.using(PRIMARY_DB_ALIAS).filter(job=name).delete()
    return deleted > 0


def job_run_now(name: str, *, by: str, now: datetime | None = None) -> JobReport:
    """Run the current tick of ``name`` here, through the lock and the ledger like a delivery."""
    job = job_get(name)
    pause = selectors.job_pause_active(job=name)
    if pause is not None:
        raise JobPaused(f"job {name!r} is paused (by {pause.paused_by}): resume it first")
    return job_execute(job=job, now=now, task_id=f"manage.py jobs run (by {by})"[:255])
