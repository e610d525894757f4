"""The lag arithmetic: how stale a replica is as a reader sees it, from WAL positions (pure
functions, unit-tested in tests/unit/replicas; ``replicas.monitor`` feeds them measurements)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# A replica's state, as routing, /health/detailed and ``manage.py replicas status`` name it.
HEALTHY = "healthy"
LAGGING = "lagging"
UNREACHABLE = "unreachable"
NOT_A_REPLICA = "not-a-replica"
UNKNOWN = "unknown"


# The WAL page size: a record straddling a page boundary is flushed (and streamed) in parts.
WAL_PAGE_BYTES = 8192


@dataclass(frozen=True)
class PrimarySample:
    """The primary at one instant: what the replicas are compared with."""

    taken_at: float  # time.monotonic() when the primary answered
    insert_lsn: int  # pg_current_wal_insert_lsn(): every acknowledged commit lies before it
    flush_lsn: int  # pg_current_wal_flush_lsn(): what can have been streamed at all
    clock: float  # the primary's clock_timestamp() as a Unix time, for commit ages
    # synchronous_commit is on: a commit becomes visible only after its WAL is flushed.
    commits_flushed_first: bool = True
    server: str = ""  # host:port of the member that is the primary now

    def clock_at(self, monotonic: float) -> float:
        """The primary's clock at ``monotonic`` (our clock only measures the time in between)."""
        return self.clock + (monotonic - self.taken_at)


def replayable_position(*, replay_lsn: int, receive_lsn: int | None, paused: bool) -> int:
    """How far a replica has got, counting an unreplayed tail shorter than a WAL page as replayed.

    The primary's flush position may end inside a record whose rest is not flushed yet; the
    replica cannot replay that half record, so its replay position trails a position it holds
    all the WAL for. A paused replica gets no such credit.
    """
    if not paused and receive_lsn is not None and 0 < receive_lsn - replay_lsn < WAL_PAGE_BYTES:
        return receive_lsn
    return replay_lsn


def estimate_lag_ms(
    *,
    sample: PrimarySample,
    history: Sequence[tuple[float, int]],
    replay_lsn: int,
    last_replayed_commit: float | None,
    asked_at: float,
) -> float | None:
    """How stale a replica at ``replay_lsn`` is, in ms, as a reader sees it.

    - 0 when it has replayed the primary's insert position sampled just before (it shows every
      commit acknowledged by then), or, with ``synchronous_commit = on``, its flush position (a
      commit is visible on the primary only once flushed, so nothing a reader could see there
      is missing).
    - Otherwise the age of the newest commit it has replayed (``last_replayed_commit``, the
      primary's commit time) at ``asked_at`` on the primary's clock: under writes, what it
      lacks was committed after that. Capped by the age of the newest ``(monotonic time,
      insert position)`` sample in ``history`` it has reached: it had everything from then.
    - None when neither tells (a replica that never replayed a commit since it started and
      has reached no sample): the caller measures again.
    """
    if replay_lsn >= sample.insert_lsn:
        return 0.0
    if sample.commits_flushed_first and replay_lsn >= sample.flush_lsn:
        return 0.0
    bounds = []
    if last_replayed_commit is not None:
        bounds.append(sample.clock_at(asked_at) - last_replayed_commit)
    reached = [taken_at for taken_at, position in history if position <= replay_lsn]
    if reached:
        bounds.append(asked_at - max(reached))
    if not bounds:
        return None
    return max(0.0, min(bounds) * 1000.0)


def classify(*, in_recovery: bool, lag_ms: float | None, max_lag_ms: float) -> str:
    if not in_recovery:
        return NOT_A_REPLICA  # promoted, or pointed at a primary: not a copy of the primary
    if lag_ms is None:
        return UNKNOWN
    return HEALTHY if lag_ms <= max_lag_ms else LAGGING
