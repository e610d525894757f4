"""Settings for the ``jobs`` app: the framework's guarantee, its queue and beat's scheduler.
Every value comes from the environment.

Beat runs on EVERY app server, all of them active. Each sends every tick; the job's lock and
its ledger row (``jobs.JobRun``, unique on job and tick) make exactly one of the deliveries
run it (docs/adr/0008-exactly-once-jobs.md). Each job declares its own interval setting and
expiry with ``@job``; an app's jobs' settings live with the app (messaging's in
``components/messaging.py``). The intervals are overridable so the cluster tests can run the
jobs every second or two.
"""

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

from jobs.schedules import BEAT_SCHEDULE

env = environ.Env()

# The framework's own job, retention (jobs/tasks.py).
JOBS_RETENTION_INTERVAL_SECONDS = env.float("JOBS_RETENTION_INTERVAL_SECONDS", default=3600.0)

# The queue the jobs' deliveries go to. Every worker consumes it (and the default queue); a
# deployment can give jobs their own queue, and the cluster tests use one of their own so that
# a worker started with other intervals never takes their deliveries.
JOBS_QUEUE = env("JOBS_QUEUE", default="celery")
if JOBS_QUEUE != "celery":
    CELERY_TASK_QUEUES = tuple(
        Queue(name, Exchange(name, type="direct"), routing_key=name) for name in ("celery", JOBS_QUEUE)
    )

# The beat scheduler that stamps each send with its epoch-aligned tick, so the three beats'
# sends of one slot name the same tick. It keeps beat's schedule file (``--schedule``).
CELERY_BEAT_SCHEDULER = "jobs.schedules:TickScheduler"
# Beat wakes at least this often even when nothing is due, so its liveness file (touched on
# every tick, config/liveness.py) is never older than this; sends still happen at the ticks.
CELERY_BEAT_MAX_LOOP_INTERVAL = env.int("CELERY_BEAT_MAX_LOOP_INTERVAL", default=10)

# One entry per job declared with ``@job`` (jobs/registry.py): its task, a tick schedule of its
# interval setting and an ``expires`` below one interval (a delivery that waited longer than that,
# workers down or a backlog, is dropped instead of piling up; the next tick's catch-up runs what
# it missed, each tick once). Built when beat reads it, once every app declared its jobs.
CELERY_BEAT_SCHEDULE = BEAT_SCHEDULE

# --- the guarantee --------------------------------------------------------------------------
# Lock TTL: renewed at a third of it while the job runs, so it only bounds how long a dead or
# paused worker keeps the job from running.
JOBS_LOCK_TTL_SECONDS = env.float("JOBS_LOCK_TTL_SECONDS", default=60.0)
# Ticks missed while no beat (or no worker) ran are run on recovery if they are at most this
# old, oldest first; older ones are recorded as `skipped-missed`.
JOBS_CATCH_UP_WINDOW_SECONDS = env.float("JOBS_CATCH_UP_WINDOW_SECONDS", default=600.0)
# At most this many `skipped-missed` rows are written per recovery (the newest ones).
JOBS_MISSED_RECORD_LIMIT = env.int("JOBS_MISSED_RECORD_LIMIT", default=1000)
# A tick whose run failed (or lost its lock) is tried again, in all at most this many times,
# waiting RETRY_BACKOFF * 2**(attempt-1) seconds (at most RETRY_BACKOFF_MAX) between tries.
JOBS_MAX_ATTEMPTS = env.int("JOBS_MAX_ATTEMPTS", default=3)
JOBS_RETRY_BACKOFF_SECONDS = env.float("JOBS_RETRY_BACKOFF_SECONDS", default=5.0)
JOBS_RETRY_BACKOFF_MAX_SECONDS = env.float("JOBS_RETRY_BACKOFF_MAX_SECONDS", default=120.0)
# A delivery's tick may be at most this far ahead of the database's clock (beats' clocks differ
# by milliseconds under NTP); a later one comes from a beat whose clock runs ahead and is
# refused as `skipped-early`, so it neither sends early nor makes the real ticks look missed.
JOBS_TICK_TOLERANCE_SECONDS = env.float("JOBS_TICK_TOLERANCE_SECONDS", default=5.0)
if not 0 <= JOBS_TICK_TOLERANCE_SECONDS <= 60:
    raise ImproperlyConfigured(
        f"JOBS_TICK_TOLERANCE_SECONDS must be between 0 and 60 seconds, got {JOBS_TICK_TOLERANCE_SECONDS}"
    )

# --- retention (jobs/retention.py) ----------------------------------------------------------
# Ledger rows and lock-audit rows older than this many days (before the tick) are deleted by the
# hourly `retention` job, in batches of RETENTION_BATCH_SIZE rows per transaction.
JOBS_RETENTION_JOB_RUNS_DAYS = env.float("JOBS_RETENTION_JOB_RUNS_DAYS", default=30.0)
JOBS_RETENTION_LOCK_GRANTS_DAYS = env.float("JOBS_RETENTION_LOCK_GRANTS_DAYS", default=30.0)
JOBS_RETENTION_BATCH_SIZE = env.int("JOBS_RETENTION_BATCH_SIZE", default=1000)
# The ledger is what stops a tick inside the catch-up window from running twice: never prune it
# that young (a day is the least; twice the window when that is longer).
_ledger_floor_days = max(1.0, 2 * JOBS_CATCH_UP_WINDOW_SECONDS / 86400)
if _ledger_floor_days > JOBS_RETENTION_JOB_RUNS_DAYS:
    raise ImproperlyConfigured(
        f"JOBS_RETENTION_JOB_RUNS_DAYS must be at least {_ledger_floor_days:g} (the ledger guards the "
        f"catch-up window), got {JOBS_RETENTION_JOB_RUNS_DAYS:g}"
    )
if JOBS_RETENTION_LOCK_GRANTS_DAYS <= 0:
    raise ImproperlyConfigured(
        f"JOBS_RETENTION_LOCK_GRANTS_DAYS must be positive, got {JOBS_RETENTION_LOCK_GRANTS_DAYS:g}"
    )
if not 1 <= JOBS_RETENTION_BATCH_SIZE <= 100_000:
    raise ImproperlyConfigured(f"JOBS_RETENTION_BATCH_SIZE must be 1-100000, got {JOBS_RETENTION_BATCH_SIZE}")
if JOBS_RETENTION_INTERVAL_SECONDS < 60:
    raise ImproperlyConfigured(
        f"JOBS_RETENTION_INTERVAL_SECONDS must be at least 60, got {JOBS_RETENTION_INTERVAL_SECONDS:g}"
    )
