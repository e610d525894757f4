"""What a job is and what its body gets: ``Job`` (name, interval, body) and ``JobContext``.

Shared by the executor (``jobs.services``) and the ``@job`` decorator (``jobs.registry``), so
neither imports the other's internals. A body receives a ``JobContext`` and does its protected
writes inside ``ctx.fenced()``, one transaction per batch, committed only while its lock is
the newest; many small writes share transactions through ``ctx.fenced_group()``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db.models import DateTimeField, Func

from config.databases import PRIMARY_DB_ALIAS
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
        batch: Counter[str] = Counter()
        with self.lock.fenced():
            yield batch
            merged = self.counts + batch
            JobRun.objects.using(PRIMARY_DB_ALIAS).filter(pk=self.run.pk).update(
                last_write_at=ClockTimestamp(), counts=dict(merged)
            )
        self.counts = merged

    @contextmanager
    def fenced_group(
        self, *, limit: int, size: Callable[[Counter[str]], int]
    ) -> Iterator[Callable[[], AbstractContextManager[Counter[str]]]]:
        """Many small writes in shared ``fenced()`` transactions: yields a ``batch`` to use where
        ``fenced`` would be. Each ``batch()`` joins the open transaction (its counter is the
        transaction's) until ``size(counter)`` reaches ``limit``; then that one commits and the
        next opens. The last commits when the block ends; an error rolls back the open one.

        Each commit costs the fence check and the ledger update: ten recurring messages of a
        hundred recipients each pay them once, not ten times (a Sunday burst has ten thousand).
        """
        stack = ExitStack()
        open_batch: list[Counter[str]] = []

        @contextmanager
        def batch() -> Iterator[Counter[str]]:
            if open_batch and size(open_batch[0]) >= limit:
                open_batch.clear()
                stack.close()  # commits
            if not open_batch:
                open_batch.append(stack.enter_context(self.fenced()))
            yield open_batch[0]

        try:
            yield batch
        except BaseException as error:
            if not stack.__exit__(type(error), error, error.__traceback__):
                raise
        else:
            stack.close()


Body = Callable[[JobContext], None]


@dataclass(frozen=True)
class Job:
    name: str  # the beat schedule key, the ledger's job, and (prefixed) the lock name
    interval_setting: str  # the setting that holds its interval in seconds
    body: Body
    task_name: str = ""  # the Celery task beat sends
    # A delivery still waiting after this share of one interval (workers down, a backlog) is
    # dropped instead of piling up: the next tick's catch-up runs what it missed, each tick once.
    expires: float = 0.9

    @property
    def interval(self) -> float:
        return float(getattr(settings, self.interval_setting))

    @property
    def expires_seconds(self) -> float:
        return max(1.0, self.interval * self.expires)

    @property
    def lock_name(self) -> str:
        return f"job:{self.name}"
