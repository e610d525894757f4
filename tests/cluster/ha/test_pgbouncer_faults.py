"""One of the two PgBouncers SIGKILLed under a steady API load through NGINX: the app servers
list both (libpq multi-host, ADR 0018), so only the requests in flight on the killed one fail,
every acknowledged message is sent once, and the cluster tooling brings it back."""

import os
import signal
import subprocess
import sys
import time
from typing import Any

import psycopg
import pytest

from bench.exactly_once import key_prefix
from bench.faults import FAULTS, wait_delivered
from deploy.local import cluster
from tests.cluster.ha.conftest import full_redundancy, messages_missing
from tests.cluster.ha.proof import sends_deadline

pytestmark = pytest.mark.cluster

DOWN_FOR = 15.0
# Requests in flight on the killed PgBouncer fail at once (their socket is reset); every later
# one must find the other PgBouncer.
IN_FLIGHT_BOUND = 2.0


def _app_clients(cfg: cluster.Settings, port: int) -> int:
    """How many app-server connections (``application_name`` app:<server>) this PgBouncer holds."""
    console: dict[str, Any] = {
        "host": "127.0.0.1", "port": port, "dbname": "pgbouncer", "user": "pgbouncer_admin",
        "password": cfg.db_password, "autocommit": True, "prepare_threshold": None, "connect_timeout": 5,
    }  # fmt: skip
    with psycopg.connect(**console) as admin:
        cursor = admin.execute("SHOW CLIENTS")
        columns = [column.name for column in cursor.description or []]
        rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    return sum(1 for row in rows if str(row.get("application_name", "")).startswith("app:app"))


def _wait_for_app_clients(cfg: cluster.Settings, port: int, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while (count := _app_clients(cfg, port)) == 0:
        assert time.monotonic() < deadline, f"no app server connected through PgBouncer :{port}"
        time.sleep(0.5)
    return count


def _claimed_and_unanswered(cfg: cluster.Settings, ids: list[int]) -> list[int]:
    """Of ``ids``, those still ``sending``: claimed by a worker that never recorded the answer."""
    if not ids:
        return []
    with psycopg.connect(
        host="127.0.0.1", port=cfg.pg_primary_port, dbname=cfg.db_name, user=cfg.db_user,
        password=cfg.db_password, autocommit=True, prepare_threshold=None, connect_timeout=5,
    ) as db:  # fmt: skip
        rows = db.execute(
            "SELECT id FROM messaging_message WHERE id = ANY(%s) AND status = 'sending' ORDER BY id", [ids]
        ).fetchall()
    return [int(row[0]) for row in rows]


def _start_with_the_tooling(name: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "deploy.local.cluster", "start", name],
        capture_output=True, text=True, timeout=60, cwd=cluster.REPO, env=dict(os.environ),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize(
    "killed",
    [["pgbouncer2"], ["pgbouncer"], ["pgbouncer2", "haproxy2"]],
    ids=["second", "first", "second-with-its-haproxy"],
)
def test_one_pgbouncer_killed_fails_only_the_requests_in_flight_on_it(
    killed, cluster_settings, api_load, exclusive_database
):
    cfg = cluster_settings
    port = cluster.services(cfg)[killed[0]].port
    assert port is not None
    survivor = next(other for other in cfg.pgbouncer_ports if other != port)
    full_redundancy(cfg)
    # given both PgBouncers running, each serving app-server connections under a steady load
    load = api_load()
    time.sleep(5.0)
    before = {port: _wait_for_app_clients(cfg, port) for port in cfg.pgbouncer_ports}
    # when one is SIGKILLed (alone, or with the HAProxy beside it) and left down
    for name in killed:
        cluster.signal_service(name, signal.SIGKILL, cfg)
    killed_at = time.monotonic()
    time.sleep(DOWN_FOR)
    survivor_clients = _app_clients(cfg, survivor)
    # and then started again by the cluster tooling
    table = cluster.services(cfg)
    for name in reversed(killed):  # HAProxy first: PgBouncer's pool reaches the server through it
        _start_with_the_tooling(name)
    assert all(cluster.port_open(table[name].port or 0) for name in killed)
    time.sleep(3.0)
    load.stop()

    answers = load.of("write") + load.of("read")
    in_flight = [a for a in answers if a.sent < killed_at <= a.done]
    failed = load.failed("write") + load.failed("read")
    print(
        f"\n{'+'.join(killed)} down {DOWN_FOR:.0f} s: app clients before {before}, on the other during "
        f"{survivor_clients}; {len(load.of('write'))} writes, {len(load.of('read'))} reads, "
        f"{len(in_flight)} in flight at the kill, slowest after it: write "
        f"{load.slowest('write', killed_at):.2f} s, read {load.slowest('read', killed_at):.2f} s; "
        f"{len(failed)} failed: "
        + ", ".join(f"{a.kind} {a.status} sent {a.sent - killed_at:+.2f} s" for a in failed)
    )
    # then only requests already in flight at the kill failed, each within the bound
    assert all(a.sent < killed_at for a in failed), "a request sent after the kill failed"
    assert all(a.done - killed_at <= IN_FLIGHT_BOUND for a in failed)
    assert len(failed) <= len(in_flight)
    # every request sent after the kill was served, through the surviving PgBouncer
    after_kill = [a for a in answers if a.sent >= killed_at]
    assert after_kill and all(200 <= a.status < 300 for a in after_kill)
    assert survivor_clients > 0
    # nothing acknowledged was lost, none reached the provider twice, and each was sent within the
    # bound and two sweeps, except a send whose worker's connection went through the killed
    # PgBouncer after its claim: that message stays `sending`, and the sweep's stuck-sending rule
    # (MESSAGING_SENDING_STUCK_SECONDS, ADR 0011) decides it later, so sends are never repeated
    # blindly. That exception is the open gap of issue 20's proof for this component.
    assert messages_missing(cfg, load.acknowledged_writes()) == []
    sent, _ = wait_delivered(
        cfg, load.acknowledged_writes(), key_prefix=key_prefix(),
        deadline=killed_at + sends_deadline(FAULTS["pgbouncer"]),
    )  # fmt: skip
    assert sent.missing == sent.duplicated == []
    stranded = _claimed_and_unanswered(cfg, sent.unsent)
    assert sent.unsent == stranded, "a message was left unsent without a claim the sweep will decide"
    assert len(stranded) <= 2
    # and the restored PgBouncer serves again
    direct: dict[str, Any] = {
        "host": "127.0.0.1", "port": port, "dbname": cfg.db_name, "user": cfg.db_user,
        "password": cfg.db_password, "prepare_threshold": None, "connect_timeout": 5,
    }  # fmt: skip
    with psycopg.connect(**direct) as db:
        assert db.execute("SELECT 1").fetchone() == (1,)
