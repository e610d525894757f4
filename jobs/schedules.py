"""Ticks: epoch-aligned slots that every beat names the same way.

A job with an interval of N seconds has one tick per slot ``[k*N, (k+1)*N)`` of Unix time; the
tick is the slot's start. Beat's own bookkeeping (``last_run_at``) differs per beat process,
so it cannot name a tick. ``TickSchedule`` is due once per slot, at the slot's start, and
``TickScheduler`` stamps every send with the slot it belongs to (``tick`` kwarg, ISO 8601),
computed on the beat from its wall clock. Three beats sending the same slot therefore send
the same tick, and the ledger's unique (job, tick) lets only one of those deliveries run. After
the beat's clock is stepped back, ``TickScheduler`` brings back the runs its schedule file
records in the future, or beat would stay silent until the clock caught up with them.

``BEAT_SCHEDULE`` is beat's schedule (``CELERY_BEAT_SCHEDULE``), built from the jobs declared
with ``@job`` (``jobs.registry``): each job brings its task, its interval setting and its expiry.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from celery.beat import PersistentScheduler, ScheduleEntry
from celery.schedules import schedstate, schedule
from django.conf import settings

from config.liveness import touch_liveness_file

if TYPE_CHECKING:
    from jobs.context import Job

logger = logging.getLogger(__name__)


def tick_of(when: datetime, interval: float) -> datetime:
    """The start of the ``interval``-second slot of Unix time that ``when`` falls in."""
    if when.tzinfo is None:
        raise ValueError("when must be an aware datetime")
    if interval <= 0:
        raise ValueError(f"interval must be positive, got {interval}")
    index = math.floor(when.timestamp() / interval)
    return datetime.fromtimestamp(index * interval, tz=UTC)


def ticks_between(first: datetime, last: datetime, interval: float) -> list[datetime]:
    """Every tick from the slot of ``first`` through the slot of ``last``, oldest first."""
    start = math.floor(first.timestamp() / interval)
    stop = math.floor(last.timestamp() / interval)
    return [datetime.fromtimestamp(index * interval, tz=UTC) for index in range(start, stop + 1)]


class TickSchedule(schedule):
    """Due once per epoch-aligned slot of ``run_every`` seconds, as soon as the slot starts."""

    @property
    def interval(self) -> float:
        return float(self.seconds)

    def current_tick(self) -> datetime:
        return tick_of(self.now().astimezone(UTC), self.interval)

    def is_due(self, last_run_at: datetime) -> schedstate:
        now = self.now().astimezone(UTC)
        if last_run_at.tzinfo is None:
            last_run_at = last_run_at.replace(tzinfo=UTC)
        current = tick_of(now, self.interval)
        until_next = (current.timestamp() + self.interval) - now.timestamp()
        due = tick_of(last_run_at.astimezone(UTC), self.interval) < current
        return schedstate(is_due=due, next=max(0.01, until_next))

    def last_run_brought_back(self, last_run_at: datetime) -> datetime:
        """``last_run_at`` if it is not later than now; else what it stands for on this clock.

        A last run later than now was stamped while this beat's clock was ahead (it has been
        stepped back since: NTP, a resumed VM). Kept, it would make beat wait until the clock
        caught up with it, sending nothing meanwhile. In this slot: this slot was sent, so now.
        In a later slot: the slot sent was one this clock has not reached yet (refused as early
        by the workers), and this one was not: the previous slot, so this one is due at once.
        """
        now = self.now().astimezone(UTC)
        if last_run_at.tzinfo is None:
            last_run_at = last_run_at.replace(tzinfo=UTC)
        if last_run_at <= now:
            return last_run_at
        current = tick_of(now, self.interval)
        if tick_of(last_run_at.astimezone(UTC), self.interval) == current:
            return now
        return current - timedelta(seconds=self.interval)

    def __repr__(self) -> str:
        return f"<tick every {self.interval:g}s, epoch-aligned>"


class TickScheduler(PersistentScheduler):
    """Beat's file-backed scheduler, plus the tick stamped on every ``TickSchedule`` send."""

    def tick(self, *args: Any, **kwargs: Any) -> float:
        touch_liveness_file()  # beat's liveness probe: the loop still turns (config/liveness.py)
        if self.bring_back_future_runs():
            # The heap holds each entry's next send in wall-clock seconds, computed by the clock
            # that was ahead: rebuilt, or beat sleeps until the clock catches up with them.
            self._heap = None
        return float(super().tick(*args, **kwargs))

    def bring_back_future_runs(self) -> list[str]:
        """The entries whose ``last_run_at`` was later than now (the clock stepped back since
        they ran, or since the schedule file was written), each brought back to this clock."""
        moved = []
        for name, entry in self.schedule.items():
            last_run_at = entry.last_run_at
            if not isinstance(entry.schedule, TickSchedule) or last_run_at is None:
                continue
            brought_back = entry.schedule.last_run_brought_back(last_run_at)
            if brought_back != last_run_at:
                logger.warning(
                    "beat: %s last ran at %s, later than now: the clock stepped back; now %s",
                    name,
                    last_run_at.isoformat(),
                    brought_back.isoformat(),
                )
                entry.last_run_at = brought_back
                moved.append(name)
        return moved

    def apply_async(
        self, entry: ScheduleEntry, producer: Any = None, advance: bool = True, **kwargs: Any
    ) -> Any:
        if not isinstance(entry.schedule, TickSchedule):
            return super().apply_async(entry, producer, advance, **kwargs)
        tick = entry.schedule.current_tick()
        reserved: ScheduleEntry = self.reserve(entry) if advance else entry  # type: ignore[assignment]
        stamped = copy.copy(reserved)
        stamped.kwargs = {**(reserved.kwargs or {}), "tick": tick.isoformat()}
        return super().apply_async(stamped, producer, False, **kwargs)


class BeatSchedule(Mapping[str, dict[str, Any]]):
    """Beat's schedule, one entry per declared job, read when beat starts (after every app's
    ``ready()`` declared its jobs), with the intervals and queue the settings have then.

    The settings name this object as ``CELERY_BEAT_SCHEDULE`` before any job is declared: they
    load first, so the entries are built on each read, never copied at import.
    """

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}  # by name; ``@job`` adds to it

    def entry(self, job: Job) -> dict[str, Any]:
        return {
            "task": job.task_name,
            "schedule": TickSchedule(job.interval),
            "options": {"expires": job.expires_seconds, "queue": settings.JOBS_QUEUE},
        }

    def __getitem__(self, name: str) -> dict[str, Any]:
        return self.entry(self.jobs[name])

    def __iter__(self) -> Iterator[str]:
        return iter(self.jobs)

    def __len__(self) -> int:
        return len(self.jobs)


BEAT_SCHEDULE = BeatSchedule()
