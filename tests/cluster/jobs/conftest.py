"""The jobs cluster tests drive the real beats and workers of the local cluster.

They restart ``worker-app1..3`` and ``beat-app1..3`` with short intervals (the processes take
``JOBS_*`` and ``MESSAGING_*`` from the environment they are started with), read and write the cluster's own
database (``app`` through PgBouncer, not the pytest database), and put the normal intervals
back when the module ends. Data is isolated: a church of its own per run, ledger rows
selected by tick window.
"""

from __future__ import annotations

import contextlib
import fcntl
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from deploy.local import cluster
from tests.cluster.db import connect

SERVERS = ("app1", "app2", "app3")
TIER = [f"worker-{s}" for s in SERVERS] + [f"beat-{s}" for s in SERVERS]
INTERVAL = 2.0
LOCK_TTL = 4.0
WINDOW = 12.0
JOBS = ("recurring-messages", "phone-linking-recovery")
TEST_ENV = {
    "MESSAGING_RECURRING_MESSAGES_INTERVAL_SECONDS": str(INTERVAL),
    "MESSAGING_PHONE_LINKING_RECOVERY_INTERVAL_SECONDS": str(INTERVAL),
    "JOBS_LOCK_TTL_SECONDS": str(LOCK_TTL),
    "JOBS_CATCH_UP_WINDOW_SECONDS": str(WINDOW),
    "JOBS_RETRY_BACKOFF_SECONDS": "0.5",
    "JOBS_MAX_ATTEMPTS": "5",
    "MESSAGING_RECURRING_MESSAGES_BATCH_SIZE": "4",
    # The sweep every 2 s, and a message queued 2 s ago counts as left behind.
    "MESSAGING_SWEEP_INTERVAL_SECONDS": str(INTERVAL),
    "MESSAGING_QUEUED_STALE_SECONDS": str(INTERVAL),
    # Deliveries on a queue of their own: a worker someone else started with the normal
    # intervals (it would read a 2 s tick as its 60 s one) never takes them.
    "JOBS_QUEUE": "jobs-cluster-test",
}


def restart_tier(cfg: cluster.Settings, env: dict[str, str]) -> None:
    """Restart every worker and beat with ``env`` added to (or, if empty, removed from) theirs."""
    with pytest.MonkeyPatch.context() as environ:
        for key in TEST_ENV:
            environ.delenv(key, raising=False)
        for key, value in env.items():
            environ.setenv(key, value)
        cluster.stop(TIER, cfg)
        table = cluster.services(cfg)
        for name in TIER:
            cluster.start_service(table[name], cfg)


def start(cfg: cluster.Settings, name: str, env: dict[str, str] | None = None) -> None:
    """Start one stopped process (with ``env`` in its environment)."""
    with pytest.MonkeyPatch.context() as environ:
        for key, value in (env or {}).items():
            environ.setenv(key, value)
        cluster.start_service(cluster.services(cfg)[name], cfg)


def tier_restarted_by_others(cfg: cluster.Settings) -> list[str]:
    """Workers and beats now running without the test intervals (someone else restarted them)."""
    marker = (
        "MESSAGING_RECURRING_MESSAGES_INTERVAL_SECONDS="
        f"{TEST_ENV['MESSAGING_RECURRING_MESSAGES_INTERVAL_SECONDS']}"
    )
    table = cluster.services(cfg)
    foreign = []
    for name in TIER:
        pid = cluster.recorded_pid(table[name], cfg)
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace").split("\0")
        except (OSError, TypeError):
            environ = []
        if marker not in environ:
            foreign.append(name)
    return foreign


@dataclass
class ClusterDb:
    """Autocommit SQL on the cluster's own database, through PgBouncer."""

    conn: psycopg.Connection[Any]

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def value(self, sql: str, *params: Any) -> Any:
        rows = self.rows(sql, *params)
        return rows[0][0] if rows else None

    def runs(self, job: str, first: datetime, last: datetime) -> list[dict[str, Any]]:
        rows = self.rows(
            "SELECT id, tick, outcome, attempt, superseded, caught_up, server, pid, lock_token, started,"
            " finished, last_write_at, error FROM jobs_jobrun WHERE job = %s AND tick >= %s AND tick <= %s"
            " ORDER BY tick, id",
            job,
            first,
            last,
        )
        keys = ("id", "tick", "outcome", "attempt", "superseded", "caught_up", "server", "pid", "lock_token",
                "started", "finished", "last_write_at", "error")  # fmt: skip
        return [dict(zip(keys, row, strict=True)) for row in rows]


@pytest.fixture(scope="module")
def cluster_db(cluster_settings: cluster.Settings) -> Iterator[ClusterDb]:
    conn = connect(cluster_settings, cluster_settings.pgbouncer_port)
    try:
        yield ClusterDb(conn)
    finally:
        conn.close()


@pytest.fixture(scope="module")
def fast_jobs_tier(cluster_settings: cluster.Settings) -> Iterator[dict[str, str]]:
    """Every worker and beat of the cluster running the jobs every 2 s; normal again afterwards.

    Two test runs doing this at once would restart each other's workers with other
    intervals, so a file lock in the cluster's state folder makes a second run wait its turn.
    """
    with (cluster_settings.state_dir / "jobs-cluster-tests.lock").open("w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        restart_tier(cluster_settings, TEST_ENV)
        try:
            yield TEST_ENV
        finally:
            for name in ("redis-lock-1", "redis-lock-2", "redis-lock-3"):
                with contextlib.suppress(cluster.ClusterError):
                    cluster.start_service(cluster.services(cluster_settings)[name], cluster_settings)
            restart_tier(cluster_settings, {})


@pytest.fixture
def church(cluster_db: ClusterDb) -> int:
    """A church of this test run only, in the cluster's database."""
    return int(
        cluster_db.value(
            "INSERT INTO messaging_church (name, time_zone, created_at) VALUES (%s, 'UTC', now())"
            " RETURNING id",
            f"jobs-cluster-{uuid.uuid4().hex[:10]}",
        )
    )


def add_contacts(db: ClusterDb, church: int, count: int) -> None:
    for n in range(count):
        db.rows(
            "INSERT INTO messaging_contact (church_id, phone, name, opted_out, created_at)"
            " VALUES (%s, %s, '', false, now())",
            church,
            f"+1646555{n:04d}",
        )


def add_recurring(db: ClusterDb, church: int, at: datetime) -> int:
    """A message due once at ``at`` (its cron then points to next New Year)."""
    return int(
        db.value(
            "INSERT INTO messaging_recurringmessage (church_id, body, cron, next_run_at, active, created_at,"
            " updated_at) VALUES (%s, 'jobs cluster test', '0 0 1 1 *', %s, true, now(), now()) RETURNING id",
            church,
            at,
        )
    )


def next_tick(after: datetime, interval: float = INTERVAL) -> datetime:
    stamp = (int(after.timestamp() // interval) + 1) * interval
    return datetime.fromtimestamp(stamp, tz=UTC)


def now() -> datetime:
    return datetime.now(UTC)


def sleep_until(moment: datetime) -> None:
    time.sleep(max(0.0, (moment - now()).total_seconds()))


def ticks(first: datetime, last: datetime, interval: float = INTERVAL) -> list[datetime]:
    out, tick = [], next_tick(first - timedelta(microseconds=1), interval)
    while tick <= last:
        out.append(tick)
        tick += timedelta(seconds=interval)
    return out
