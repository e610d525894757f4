"""Reads of the run ledger. Always the primary: these decide writes."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import connections
from django.db.models import Max

from config.databases import PRIMARY_DB_ALIAS
from config.retry import capped_backoff
from jobs.models import RUN_OUTCOMES, JobPause, JobRun, Outcome

RUN_OUTCOME_VALUES = [outcome.value for outcome in RUN_OUTCOMES]


def retry_backoff(*, attempt: int) -> float:
    """Seconds to wait after the ``attempt``-th failed try of a tick before the next one."""
    return capped_backoff(
        attempt=attempt, base=settings.JOBS_RETRY_BACKOFF_SECONDS, cap=settings.JOBS_RETRY_BACKOFF_MAX_SECONDS
    )


def job_live_run(*, job: str, tick: datetime) -> JobRun | None:
    """The tick's current run row (the one not superseded), if any."""
    return (
        JobRun.objects.using(PRIMARY_DB_ALIAS)
        .filter(job=job, tick=tick, superseded=False, outcome__in=RUN_OUTCOME_VALUES)
        .first()
    )


def job_live_runs(*, job: str, first: datetime, last: datetime) -> dict[datetime, JobRun]:
    rows = JobRun.objects.using(PRIMARY_DB_ALIAS).filter(
        job=job, tick__gte=first, tick__lte=last, superseded=False, outcome__in=RUN_OUTCOME_VALUES
    )
    return {row.tick: row for row in rows}


def job_ticks_refused(*, job: str, after: datetime, upto: datetime) -> list[datetime]:
    """Ticks in (``after``, ``upto``] that a delivery found locked (``skipped-held``), oldest first."""
    return list(
        JobRun.objects.using(PRIMARY_DB_ALIAS)
        .filter(job=job, tick__gt=after, tick__lte=upto, outcome=Outcome.SKIPPED_HELD)
        .values_list("tick", flat=True)
        .distinct()
        .order_by("tick")
    )


def job_last_run_tick(*, job: str, before: datetime) -> datetime | None:
    """The newest tick before ``before`` that has a run row of any outcome."""
    return (
        JobRun.objects.using(PRIMARY_DB_ALIAS)
        .filter(job=job, tick__lt=before, outcome__in=RUN_OUTCOME_VALUES)
        .aggregate(last=Max("tick"))["last"]
    )


def job_run_settled(*, run: JobRun) -> bool:
    """Whether nothing will ever run this tick again: it succeeded, was missed, or is out of attempts."""
    if run.outcome in (Outcome.SUCCESS, Outcome.SKIPPED_MISSED):
        return True
    if run.outcome in (Outcome.FAILED, Outcome.LOST_LOCK):
        return run.attempt >= settings.JOBS_MAX_ATTEMPTS
    return False


def job_tick_runnable(*, run: JobRun | None, token: int | None, now: datetime) -> bool:
    """Whether the holder of lock ``token`` should run this tick now.

    No row: never ran. ``running`` under an older token: its worker lost the lock (it was
    killed or paused; we hold the lock now), so the run was abandoned. ``failed`` or
    ``lost-lock``: retried with backoff while attempts remain.
    """
    if run is None:
        return True
    if run.outcome == Outcome.RUNNING:
        return token is not None and run.lock_token is not None and run.lock_token < token
    if run.outcome in (Outcome.FAILED, Outcome.LOST_LOCK):
        if run.attempt >= settings.JOBS_MAX_ATTEMPTS:
            return False
        ended = run.finished or run.started
        return now >= ended + timedelta(seconds=retry_backoff(attempt=run.attempt))
    return False


def job_pause_active(*, job: str) -> JobPause | None:
    """The operator's pause of ``job``, if it is paused (read on every delivery, on the primary,
    so a pause holds on every server from its next delivery on)."""
    return JobPause.objects.using(PRIMARY_DB_ALIAS).filter(job=job).first()


def database_now() -> datetime:
    """The primary's clock (``clock_timestamp()``): the one time every server's jobs agree on."""
    with connections[PRIMARY_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        row = cursor.fetchone()
    assert row is not None
    now: datetime = row[0]
    return now
