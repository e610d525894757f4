"""Running a job's tick exactly once: the framework every job goes through.

``job_execute`` is the one code path of every delivery (docs/adr/0008-exactly-once-jobs.md):

0. a job an operator paused (``manage.py jobs pause``) runs nothing: a ``skipped-paused`` row;
1. a tick whose run already settled (success, missed, out of attempts) is a duplicate: a
   ``skipped-duplicate`` row, nothing runs;
2. take the job's lock: held elsewhere -> ``skipped-held``; no quorum (or no database for
   the fencing token) -> ``skipped-unavailable``: fail closed, the job does not run;
3. under the lock, record the ticks older than the catch-up window that never ran as
   ``skipped-missed``, then run every tick of the window up to this one that still needs a
   run, oldest first: claim its ledger row (unique on job and tick) in a fenced transaction,
   run the body, whose batches commit through the fence, and record the outcome;
4. release the lock.

Everything here reads and writes the primary (``using(PRIMARY_DB_ALIAS)``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from config import metrics
from config.databases import PRIMARY_DB_ALIAS
from jobs import selectors
from jobs.context import Job, JobContext
from jobs.models import JobRun, Outcome
from jobs.schedules import tick_of, ticks_between
from locking.errors import LockLost, LockUnavailable
from locking.services import JobLock, acquire_job_lock, release_job_lock

logger = logging.getLogger(__name__)


@dataclass
class JobReport:
    """What one delivery did: the outcome for its own tick and every tick it ran."""

    job: str
    tick: datetime
    outcome: str
    ran: list[tuple[datetime, str]] = field(default_factory=list)
    retry_in: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "tick": self.tick.isoformat(),
            "outcome": self.outcome,
            "ran": [[tick.isoformat(), outcome] for tick, outcome in self.ran],
        }


def _identity() -> dict[str, Any]:
    return {"server": settings.APP_SERVER_NAME, "pid": os.getpid()}


def _record_skip(*, job: Job, tick: datetime, outcome: Outcome, task_id: str, detail: str) -> None:
    metrics.record_job_run(job=job.name, outcome=outcome.value, interval_seconds=job.interval)
    logger.info(
        "job delivery skipped", extra={"job": job.name, "tick": tick.isoformat(), "outcome": outcome.value}
    )
    now = timezone.now()
    try:
        JobRun.objects.using(PRIMARY_DB_ALIAS).create(
            job=job.name,
            tick=tick,
            outcome=outcome,
            task_id=task_id,
            started=now,
            finished=now,
            error=detail[:2000],
            **_identity(),
        )
    except DatabaseError as exc:  # the skip stands; only its record is lost (and logged)
        logger.warning(
            "job %s tick %s: %s, and the ledger could not record it: %s", job.name, tick, outcome, exc
        )


def job_execute(
    *, job: Job, tick: datetime | None = None, task_id: str = "", now: datetime | None = None
) -> JobReport:
    """Run ``tick`` of ``job`` (and the ticks it missed) unless it ran already; see the module doc.

    Time is the database's (``now`` defaults to the primary's clock), not this server's: a
    delivery whose tick is later than it plus ``JOBS_TICK_TOLERANCE_SECONDS`` was stamped by a
    beat whose clock runs ahead, and is refused (``skipped-early``) instead of running the
    future early and calling the real ticks before it missed.
    """
    now = now or selectors.database_now()
    clock_offset = now - timezone.now()  # this server's clock -> the database's, for later reads
    interval = job.interval
    if tick is not None and tick > now + timedelta(seconds=settings.JOBS_TICK_TOLERANCE_SECONDS):
        ahead = (tick - now).total_seconds()
        logger.warning(
            "job %s: refused the delivery of tick %s, %.1fs ahead of the database clock",
            job.name,
            tick.isoformat(),
            ahead,
        )
        refused = tick_of(tick, interval)
        detail = f"tick is {ahead:.1f}s ahead of the database clock ({now.isoformat()})"
        _record_skip(job=job, tick=refused, outcome=Outcome.SKIPPED_EARLY, task_id=task_id, detail=detail)
        return JobReport(job=job.name, tick=refused, outcome=Outcome.SKIPPED_EARLY)
    tick = tick_of(tick or now, interval)
    pause = selectors.job_pause_active(job=job.name)
    if pause is not None:
        detail = f"paused by {pause.paused_by} at {pause.paused_at.isoformat()}: {pause.reason}".rstrip(": ")
        _record_skip(job=job, tick=tick, outcome=Outcome.SKIPPED_PAUSED, task_id=task_id, detail=detail)
        return JobReport(job=job.name, tick=tick, outcome=Outcome.SKIPPED_PAUSED)
    live = selectors.job_live_run(job=job.name, tick=tick)
    if live is not None and selectors.job_run_settled(run=live):
        detail = f"tick already has run #{live.pk} ({live.outcome})"
        _record_skip(job=job, tick=tick, outcome=Outcome.SKIPPED_DUPLICATE, task_id=task_id, detail=detail)
        return JobReport(job=job.name, tick=tick, outcome=Outcome.SKIPPED_DUPLICATE)
    try:
        lock = acquire_job_lock(job.lock_name, ttl=settings.JOBS_LOCK_TTL_SECONDS)
    except LockUnavailable as exc:
        logger.warning("job %s tick %s not run, failing closed: %s", job.name, tick.isoformat(), exc)
        _record_skip(
            job=job, tick=tick, outcome=Outcome.SKIPPED_UNAVAILABLE, task_id=task_id, detail=str(exc)
        )
        return JobReport(job=job.name, tick=tick, outcome=Outcome.SKIPPED_UNAVAILABLE)
    if lock is None:
        _record_skip(
            job=job,
            tick=tick,
            outcome=Outcome.SKIPPED_HELD,
            task_id=task_id,
            detail="lock held by another run",
        )
        return JobReport(job=job.name, tick=tick, outcome=Outcome.SKIPPED_HELD)
    try:
        return _run_pending(job=job, tick=tick, lock=lock, task_id=task_id, clock_offset=clock_offset)
    except LockLost as exc:  # lost before a run started (e.g. the token came too late)
        logger.warning("job %s tick %s: lock lost before running: %s", job.name, tick.isoformat(), exc)
        detail = f"lock lost before the run started: {exc}"
        _record_skip(job=job, tick=tick, outcome=Outcome.SKIPPED_HELD, task_id=task_id, detail=detail)
        return JobReport(job=job.name, tick=tick, outcome=Outcome.SKIPPED_HELD)
    finally:
        release_job_lock(lock)


MAX_CATCH_UP_ROUNDS = 10


def _run_pending(
    *, job: Job, tick: datetime, lock: JobLock, task_id: str, clock_offset: timedelta
) -> JobReport:
    """Under the lock: run every runnable tick of the window ending at ``tick``, oldest first.

    Then the later ticks whose deliveries arrived while this one held the lock (and were
    recorded ``skipped-held``): they are run now instead of waiting for the next delivery's
    catch-up, which a long run could otherwise push out of the window.
    """
    interval = job.interval
    report = JobReport(job=job.name, tick=tick, outcome=Outcome.SKIPPED_DUPLICATE)
    window_start = tick - timedelta(seconds=settings.JOBS_CATCH_UP_WINDOW_SECONDS)
    missed = _record_missed(job=job, lock=lock, before=window_start, interval=interval)
    if missed:
        logger.warning(
            "job %s: %d ticks before %s were missed; recorded as skipped", job.name, missed, window_start
        )
    if selectors.job_last_run_tick(job=job.name, before=tick) is None:
        candidates = [tick]  # a job's first tick ever: nothing before it was "missed"
    else:
        candidates = [t for t in ticks_between(window_start, tick, interval) if t >= window_start]
    upto = tick
    for _ in range(MAX_CATCH_UP_ROUNDS):
        live = selectors.job_live_runs(job=job.name, first=candidates[0], last=candidates[-1])
        now = timezone.now() + clock_offset
        pending = [
            t for t in candidates if selectors.job_tick_runnable(run=live.get(t), token=lock.token, now=now)
        ]
        for pending_tick in pending:
            run = _claim(
                job=job, tick=pending_tick, lock=lock, task_id=task_id, caught_up=pending_tick != tick
            )
            if run is None:
                continue
            outcome = _run_one(job=job, run=run, lock=lock)
            report.ran.append((pending_tick, outcome))
            if pending_tick == tick:
                report.outcome = outcome
                if outcome == Outcome.FAILED and run.attempt < settings.JOBS_MAX_ATTEMPTS:
                    report.retry_in = selectors.retry_backoff(attempt=run.attempt)
            if outcome == Outcome.LOST_LOCK:
                return report  # the lock is someone else's now; they run what is left
        candidates = selectors.job_ticks_refused(
            job=job.name, after=upto, upto=tick_of(timezone.now() + clock_offset, interval)
        )
        if not candidates:
            break
        upto = candidates[-1]
    if report.outcome == Outcome.SKIPPED_DUPLICATE:
        current = selectors.job_live_run(job=job.name, tick=tick)
        detail = f"tick already has run #{current.pk} ({current.outcome})" if current else "tick not runnable"
        _record_skip(job=job, tick=tick, outcome=Outcome.SKIPPED_DUPLICATE, task_id=task_id, detail=detail)
    return report


def _record_missed(*, job: Job, lock: JobLock, before: datetime, interval: float) -> int:
    """Write ``skipped-missed`` for the ticks between the last run and ``before`` that never ran."""
    last = selectors.job_last_run_tick(job=job.name, before=before)
    if last is None:
        return 0  # a job's first run ever: there is no history to call missed
    ticks = [
        t for t in ticks_between(last + timedelta(seconds=interval), before, interval) if last < t < before
    ]
    ticks = ticks[-settings.JOBS_MISSED_RECORD_LIMIT :]
    if not ticks:
        return 0
    now = timezone.now()
    rows = [
        JobRun(
            job=job.name,
            tick=t,
            outcome=Outcome.SKIPPED_MISSED,
            started=now,
            finished=now,
            lock_token=lock.token,
            error=f"no run within the {settings.JOBS_CATCH_UP_WINDOW_SECONDS:g}s catch-up window",
            **_identity(),
        )
        for t in ticks
    ]
    with lock.fenced():
        JobRun.objects.using(PRIMARY_DB_ALIAS).bulk_create(rows, ignore_conflicts=True)
    metrics.job_runs.labels(job=job.name, outcome=Outcome.SKIPPED_MISSED.value).inc(len(rows))
    return len(rows)


def _claim(*, job: Job, tick: datetime, lock: JobLock, task_id: str, caught_up: bool) -> JobRun | None:
    """Insert the tick's live run row (superseding a retryable one); ``None`` if it is not ours to run."""
    try:
        with lock.fenced():
            previous = (
                JobRun.objects.using(PRIMARY_DB_ALIAS)
                .select_for_update()
                .filter(job=job.name, tick=tick, superseded=False, outcome__in=selectors.RUN_OUTCOME_VALUES)
                .first()
            )
            now = timezone.now()
            if previous is not None:
                if not selectors.job_tick_runnable(run=previous, token=lock.token, now=now):
                    return None
                if previous.outcome == Outcome.RUNNING:
                    previous.outcome = Outcome.LOST_LOCK
                    previous.finished = now
                    previous.error = (
                        f"abandoned: its worker stopped holding lock token {previous.lock_token} "
                        f"(killed or paused); token {lock.token} took over"
                    )
                if previous.attempt >= settings.JOBS_MAX_ATTEMPTS:
                    previous.save(using=PRIMARY_DB_ALIAS, update_fields=["outcome", "finished", "error"])
                    logger.error("job %s tick %s: out of attempts (%s)", job.name, tick, previous.outcome)
                    return None
                previous.superseded = True
                previous.save(
                    using=PRIMARY_DB_ALIAS, update_fields=["outcome", "finished", "error", "superseded"]
                )
            with transaction.atomic(using=PRIMARY_DB_ALIAS):
                return JobRun.objects.using(PRIMARY_DB_ALIAS).create(
                    job=job.name,
                    tick=tick,
                    outcome=Outcome.RUNNING,
                    attempt=1 if previous is None else previous.attempt + 1,
                    caught_up=caught_up,
                    task_id=task_id,
                    lock_token=lock.token,
                    started=timezone.now(),
                    **_identity(),
                )
    except IntegrityError:
        return None  # another delivery claimed it first: the unique constraint decided


def _finish(*, run: JobRun, outcome: Outcome, error: str = "", counts: dict[str, int] | None = None) -> None:
    """Record how the run ended, unless a newer holder already took its row over."""
    fields: dict[str, Any] = {"outcome": outcome, "finished": timezone.now(), "error": error[:4000]}
    if counts is not None:
        fields["counts"] = counts
    try:
        JobRun.objects.using(PRIMARY_DB_ALIAS).filter(
            pk=run.pk, outcome=Outcome.RUNNING, superseded=False
        ).update(**fields)
    except DatabaseError as exc:
        logger.warning("job %s tick %s: could not record %s: %s", run.job, run.tick, outcome, exc)


def _run_one(*, job: Job, run: JobRun, lock: JobLock) -> str:
    ctx = JobContext(job=job, tick=run.tick, lock=lock, run=run)
    try:
        lock.ensure_held()
        job.body(ctx)
        with lock.fenced():
            settled = (
                JobRun.objects.using(PRIMARY_DB_ALIAS)
                .filter(pk=run.pk, outcome=Outcome.RUNNING, superseded=False)
                .update(outcome=Outcome.SUCCESS, finished=timezone.now(), counts=dict(ctx.counts))
            )
        outcome = Outcome.SUCCESS if settled else Outcome.LOST_LOCK
    except LockLost as exc:
        logger.warning("job %s tick %s lost its lock: %s", job.name, run.tick, exc)
        _finish(run=run, outcome=Outcome.LOST_LOCK, error=str(exc), counts=dict(ctx.counts))
        outcome = Outcome.LOST_LOCK
    except Exception as exc:
        logger.exception("job %s tick %s failed (attempt %d)", job.name, run.tick, run.attempt)
        _finish(
            run=run, outcome=Outcome.FAILED, error=f"{type(exc).__name__}: {exc}", counts=dict(ctx.counts)
        )
        outcome = Outcome.FAILED
    _observe_run(job=job, run=run, lock=lock, outcome=str(outcome))
    return str(outcome)


def _observe_run(*, job: Job, run: JobRun, lock: JobLock, outcome: str) -> None:
    """The run's metrics (config/metrics.py) and one structured log line with its tick and token."""
    finished = timezone.now()
    metrics.record_job_run(
        job=job.name,
        outcome=outcome,
        seconds=(finished - run.started).total_seconds(),
        start_delay_seconds=(run.started - run.tick).total_seconds(),
        interval_seconds=job.interval,
    )
    logger.info(
        "job run",
        extra={"job": job.name, "tick": run.tick.isoformat(), "lock_token": lock.token, "outcome": outcome},
    )
