"""Retention: the tables that only grow (the run ledger, the lock audit, and what apps register)
are pruned by one scheduled job, ``retention`` (jobs/tasks.py), once per tick like every job.

An app registers the pruning of its own tables with ``@pruner("app.Model")``, in the module
its ``AppConfig.ready()`` imports (messaging: ``messaging/jobs.py``), so this framework never
imports an app above it. A pruner gets the job's context and deletes what is older than its
setting allows, in batches, each batch one fenced transaction (``prune_in_batches``): a run
that lost its lock deletes nothing more, and no long transaction holds the table. What each
pruner deleted is the run's ``counts``, shown with every run in the admin (Jobs -> Retention runs).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet

from config.databases import PRIMARY_DB_ALIAS
from jobs.context import JobContext
from jobs.models import JobRun
from locking.models import LockGrant

Pruner = Callable[[JobContext], None]
PRUNERS: dict[str, Pruner] = {}


def pruner(label: str) -> Callable[[Pruner], Pruner]:
    """Register ``prune(ctx)`` under ``label`` (its counts' key, e.g. ``"jobs.JobRun"``)."""

    def register(prune: Pruner) -> Pruner:
        PRUNERS[label] = prune
        return prune

    return register


def prune_in_batches(ctx: JobContext, *, label: str, queryset: QuerySet[Any]) -> int:
    """Delete ``queryset``'s rows (on the primary), ``JOBS_RETENTION_BATCH_SIZE`` per fenced
    transaction, oldest ids first; the number deleted is added to ``counts[label]``."""
    size = settings.JOBS_RETENTION_BATCH_SIZE
    rows = queryset.using(PRIMARY_DB_ALIAS).order_by("pk")
    total = 0
    while True:
        ctx.lock.ensure_held()
        with ctx.fenced() as counts:
            batch = list(rows.values_list("pk", flat=True)[:size])
            deleted = (
                rows.model.objects.using(PRIMARY_DB_ALIAS).filter(pk__in=batch).delete()[0] if batch else 0
            )
            counts[label] += deleted
        total += deleted
        if len(batch) < size:
            return total


def prune_all(ctx: JobContext) -> None:
    """The retention job's body: every registered pruner, in label order."""
    for label in sorted(PRUNERS):
        ctx.counts[label] += 0  # a table with nothing to prune still shows in the run's counts
        PRUNERS[label](ctx)


@pruner("jobs.JobRun")
def job_runs_prune(ctx: JobContext) -> None:
    """Ledger rows of runs started more than ``JOBS_RETENTION_JOB_RUNS_DAYS`` before the tick.

    The setting is validated to exceed the catch-up window: the ledger is what stops a tick
    inside the window from running twice."""
    cutoff = ctx.tick - timedelta(days=settings.JOBS_RETENTION_JOB_RUNS_DAYS)
    prune_in_batches(ctx, label="jobs.JobRun", queryset=JobRun.objects.filter(started__lt=cutoff))


@pruner("locking.LockGrant")
def lock_grants_prune(ctx: JobContext) -> None:
    """Audit rows of grants acquired more than ``JOBS_RETENTION_LOCK_GRANTS_DAYS`` before the
    tick that ended (or whose holder vanished and whose expiry is that old too); never a held one."""
    cutoff = ctx.tick - timedelta(days=settings.JOBS_RETENTION_LOCK_GRANTS_DAYS)
    ended = ~Q(outcome=LockGrant.Outcome.HELD) | Q(expires__lt=cutoff)
    prune_in_batches(
        ctx, label="locking.LockGrant", queryset=LockGrant.objects.filter(ended, acquired__lt=cutoff)
    )
