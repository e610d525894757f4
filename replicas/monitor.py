"""Replica health and lag, measured once per interval per process and cached: the one measure.

A daemon thread per process re-measures every ``REPLICA_LAG_REFRESH_SECONDS`` while the router
is in use (it sleeps after a minute without routing decisions), so a routing decision only reads
the cached :class:`Snapshot`. When the snapshot is missing or older than two intervals (a fresh
process, or one waking from idle), the first decision measures inline; the others use what is
cached. So a refresh adds round trips to at most one query per interval. Routing, the
``/health/detailed`` probe, ``manage.py replicas status`` and the ``app_replica_lag_seconds``
metric all read these measurements (``replicas.selectors``): there is no second algorithm.

What is measured is staleness as a reader sees it: how long ago the oldest write committed on the
primary that this replica does not show yet. Each refresh samples the primary's *insert* position
(every commit acknowledged so far lies before it), its flush position, its clock and its
``synchronous_commit``, then asks each replica how far it has replayed and the commit time of the
newest transaction it replayed (``pg_last_xact_replay_timestamp()``). See :func:`estimate_lag_ms`:
caught up with the insert position means 0; otherwise the lag is the age of the newest commit the
replica has replayed, on the primary's clock (no clock skew between servers enters), never more
than the age of the newest sampled primary position it has reached. That age alone would read an
idle primary's quiet time as lag; it is only used while the replica lacks WAL the primary has.

The monitor talks to the servers over its own psycopg connections (autocommit, short connect
timeout), never through Django's per-thread connections.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

import psycopg
from django.conf import settings

from config import databases, metrics
from config.databases import PRIMARY_DB_ALIAS
from config.postgres import QueryUnavailable, fetch_one
from replicas.conf import replica_settings
from replicas.lag import (
    HEALTHY,
    UNREACHABLE,
    PrimarySample,
    classify,
    estimate_lag_ms,
    replayable_position,
)
from replicas.lsn import format_lsn, parse_lsn

logger = logging.getLogger(__name__)


HISTORY_SAMPLES = 600
IDLE_AFTER_SECONDS = 60.0
# A measurement older than this many refresh intervals is not used (reads go to the primary).
TRUSTED_FOR_INTERVALS = 3


@dataclass(frozen=True)
class ReplicaState:
    """One replica as last measured."""

    alias: str
    status: str
    lag_ms: float | None = None
    replay_lsn: int | None = None
    receive_lsn: int | None = None
    measured_at: float = 0.0  # time.monotonic()
    error: str = ""
    replay_paused: bool = False
    # host:port of the member that answered: with failover the replica is a role, not a host.
    server: str = ""

    @property
    def healthy(self) -> bool:
        return self.status == HEALTHY

    def as_dict(self) -> dict[str, object]:
        return {
            "alias": self.alias,
            "status": self.status,
            "lag_ms": None if self.lag_ms is None else round(self.lag_ms, 1),
            "replay_lsn": None if self.replay_lsn is None else format_lsn(self.replay_lsn),
            "receive_lsn": None if self.receive_lsn is None else format_lsn(self.receive_lsn),
            "replay_paused": self.replay_paused,
            "error": self.error,
            "server": self.server,
        }


@dataclass(frozen=True)
class Snapshot:
    """Every replica's state and the primary's position, from one refresh."""

    taken_at: float  # time.monotonic()
    primary_lsn: int | None
    primary_error: str
    replicas: dict[str, ReplicaState]
    # The healthy aliases in settings order, worked out once here rather than per query.
    healthy: tuple[str, ...] = ()
    primary_server: str = ""  # host:port of the member that answered as the primary

    @classmethod
    def of(
        cls,
        *,
        taken_at: float,
        primary_lsn: int | None,
        primary_error: str,
        replicas: dict[str, ReplicaState],
        primary_server: str = "",
    ) -> Snapshot:
        healthy = tuple(alias for alias, state in replicas.items() if state.healthy)
        return cls(
            taken_at=taken_at,
            primary_lsn=primary_lsn,
            primary_error=primary_error,
            replicas=replicas,
            healthy=healthy,
            primary_server=primary_server,
        )


# host:port of the server that runs the query (behind PgBouncer and HAProxy: the member).
SERVER_SQL = "coalesce(host(inet_server_addr()) || ':' || inet_server_port(), '')"


class ReplicaMonitor:
    """Per-process cache of replica states; see the module docstring."""

    def __init__(self) -> None:
        self._refresh_lock = threading.Lock()
        self._thread_lock = threading.Lock()
        self._wake = threading.Event()
        self._snapshot: Snapshot | None = None
        self._history: collections.deque[tuple[float, int]] = collections.deque(maxlen=HISTORY_SAMPLES)
        self._sample: PrimarySample | None = None
        self._connections: dict[str, psycopg.Connection[Any]] = {}
        self._thread: threading.Thread | None = None
        self._last_used = 0.0

    # --- the hot path ---------------------------------------------------------------------

    def snapshot(self) -> Snapshot | None:
        """The cached measurements, refreshed inline only when missing or stale (see above);
        None when there is no measurement recent enough to trust."""
        now = time.monotonic()
        self._last_used = now
        if self._thread is None:
            self._start_thread()
        snapshot = self._snapshot
        interval = replica_settings().refresh_seconds
        if snapshot is None or now - snapshot.taken_at > 2 * interval:
            self._wake.set()
            # With no measurement at all, wait for the one under way (a fresh process); with an
            # old one, never wait: another thread is already refreshing it.
            if snapshot is None:
                acquired = self._refresh_lock.acquire(
                    timeout=2.0 * replica_settings().connect_timeout_seconds
                )
            else:
                acquired = self._refresh_lock.acquire(blocking=False)
            if acquired:
                try:
                    current = self._snapshot
                    if current is None or current is snapshot:
                        self._refresh_locked()
                finally:
                    self._refresh_lock.release()
            snapshot = self._snapshot
        if snapshot is not None and time.monotonic() - snapshot.taken_at > TRUSTED_FOR_INTERVALS * interval:
            return None  # a refresh is stuck (a frozen server answers no query): trust nothing
        return snapshot

    # --- corrections from the routing path ------------------------------------------------

    def note_replayed(self, alias: str, replay_lsn: int) -> None:
        """A fresh replay position read by the router (read-your-writes check)."""
        snapshot = self._snapshot
        if snapshot is None or alias not in snapshot.replicas:
            return
        state = snapshot.replicas[alias]
        if state.replay_lsn is None or replay_lsn > state.replay_lsn:
            self._replace_state(snapshot, replace(state, replay_lsn=replay_lsn))

    def mark_unreachable(self, alias: str, error: str) -> None:
        """A query on the replica failed: skip it until the next refresh reaches it."""
        snapshot = self._snapshot
        if snapshot is None or alias not in snapshot.replicas:
            return
        self._replace_state(
            snapshot, ReplicaState(alias=alias, status=UNREACHABLE, measured_at=time.monotonic(), error=error)
        )

    def _replace_state(self, snapshot: Snapshot, state: ReplicaState) -> None:
        self._snapshot = Snapshot.of(
            taken_at=snapshot.taken_at,
            primary_lsn=snapshot.primary_lsn,
            primary_error=snapshot.primary_error,
            replicas={**snapshot.replicas, state.alias: state},
            primary_server=snapshot.primary_server,
        )

    # --- measuring ------------------------------------------------------------------------

    def refresh(self) -> Snapshot:
        """Measure now (management command, tests). Waits for a refresh under way."""
        with self._refresh_lock:
            return self._refresh_locked()

    def _refresh_locked(self) -> Snapshot:
        conf = replica_settings()
        primary_lsn, primary_error, primary_server = None, "", ""
        try:
            sample = self._primary_sample()
            self._sample = sample
            self._history.append((sample.taken_at, sample.insert_lsn))
            primary_lsn, primary_server = sample.insert_lsn, sample.server
        except (psycopg.Error, OSError, ValueError, QueryUnavailable) as exc:
            # Compared with the last sample: with the primary down nothing new commits.
            primary_error = _short(exc)
            self._drop_connection(PRIMARY_DB_ALIAS)
        states = {alias: self._measure(alias, conf.max_lag_ms) for alias in conf.replicas}
        snapshot = Snapshot.of(
            taken_at=time.monotonic(),
            primary_lsn=primary_lsn,
            primary_error=primary_error,
            replicas=states,
            primary_server=primary_server,
        )
        self._snapshot = snapshot
        for state in states.values():
            metrics.record_replica_lag(
                replica=state.alias,
                seconds=None if state.lag_ms is None else state.lag_ms / 1000,
                reachable=state.status != UNREACHABLE,
            )
        return snapshot

    def _primary_sample(self) -> PrimarySample:
        # Bounded by one refresh interval: while the primary fails over, PgBouncer holds a query
        # until the new leader serves (ADR 0017), and the replicas would go unmeasured (their
        # reads sent to the primary) meanwhile. Past the deadline the refresh goes on with the
        # last sample, as with the primary down.
        row = fetch_one(
            self._connection(PRIMARY_DB_ALIAS),
            "SELECT pg_current_wal_insert_lsn()::text, pg_current_wal_flush_lsn()::text,"
            " extract(epoch FROM clock_timestamp())::float8,"
            f" current_setting('synchronous_commit') <> 'off', {SERVER_SQL}",
            deadline=time.monotonic() + replica_settings().refresh_seconds,
        )
        insert_text, flush_text, clock, flushed_first, server = row
        if insert_text is None or flush_text is None or clock is None:
            raise ValueError("the primary's WAL position query returned nulls")
        return PrimarySample(
            taken_at=time.monotonic(),
            insert_lsn=parse_lsn(insert_text),
            flush_lsn=parse_lsn(flush_text),
            clock=float(clock),
            commits_flushed_first=flushed_first == "t",
            server=server or "",
        )

    def _measure(self, alias: str, max_lag_ms: float) -> ReplicaState:
        # The replica's answer describes it no earlier than this; timing from the answer's
        # arrival would count our own delays (connecting, a busy GIL) as replication lag.
        asked_at = time.monotonic()
        try:
            row = (
                self._connection(alias)
                .execute(
                    "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text,"
                    " pg_last_wal_receive_lsn()::text,"
                    " CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END,"
                    " extract(epoch FROM pg_last_xact_replay_timestamp())::float8,"
                    f" {SERVER_SQL}"
                )
                .fetchone()
            )
        except (psycopg.Error, OSError) as exc:
            self._drop_connection(alias)
            return ReplicaState(
                alias=alias, status=UNREACHABLE, measured_at=time.monotonic(), error=_short(exc)
            )
        assert row is not None  # a SELECT without FROM returns one row
        in_recovery, replay_text, receive_text, paused, last_commit, server = row
        now = time.monotonic()
        replay = parse_lsn(replay_text) if replay_text else None
        receive = parse_lsn(receive_text) if receive_text else None
        lag_ms = None
        sample = self._sample
        if in_recovery and replay is not None and sample is not None:
            position = replayable_position(replay_lsn=replay, receive_lsn=receive, paused=bool(paused))
            lag_ms = estimate_lag_ms(
                sample=sample,
                history=self._history,
                replay_lsn=position,
                last_replayed_commit=None if last_commit is None else float(last_commit),
                asked_at=asked_at,
            )
        status = classify(in_recovery=bool(in_recovery), lag_ms=lag_ms, max_lag_ms=max_lag_ms)
        return ReplicaState(
            alias=alias,
            status=status,
            lag_ms=lag_ms,
            replay_lsn=replay,
            receive_lsn=receive,
            measured_at=now,
            replay_paused=bool(paused),
            server=str(server or ""),
        )

    def _connection(self, alias: str) -> psycopg.Connection[Any]:
        conn = self._connections.get(alias)
        if conn is None or conn.closed:
            db: dict[str, Any] = settings.DATABASES[alias]
            options: dict[str, Any] = db.get("OPTIONS", {})
            conn = databases.connect(
                db,
                connect_timeout=replica_settings().connect_timeout_seconds,
                application_name=f"{options.get('application_name', 'app')}:replica-monitor",
                autocommit=True,
                prepare_threshold=None,  # PgBouncer in transaction mode (DESIGN decision 8)
            )
            self._connections[alias] = conn
        return conn

    def _drop_connection(self, alias: str) -> None:
        conn = self._connections.pop(alias, None)
        if conn is not None:
            with contextlib.suppress(psycopg.Error, OSError):  # already broken
                conn.close()

    # --- the background thread ------------------------------------------------------------

    def _start_thread(self) -> None:
        with self._thread_lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="replica-monitor", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            if time.monotonic() - self._last_used > IDLE_AFTER_SECONDS:
                self._wake.clear()
                self._wake.wait()  # a routing decision wakes us
            try:
                with self._refresh_lock:
                    self._refresh_locked()
            except Exception:  # the thread must outlive any surprise
                logger.exception("replica monitor refresh failed")
            time.sleep(replica_settings().refresh_seconds)

    def _after_fork_in_child(self) -> None:
        # Threads and sockets do not survive fork(): start over in the child.
        self._refresh_lock = threading.Lock()
        self._thread_lock = threading.Lock()
        self._wake = threading.Event()
        self._connections = {}
        self._thread = None
        self._snapshot = None


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"


monitor = ReplicaMonitor()
os.register_at_fork(after_in_child=monitor._after_fork_in_child)
