"""One lag measurement: the router, /health/detailed, the metric and ``replicas status`` agree.

Under a steady 300 transactions a second on the primary (``synchronous_commit = on``) each of
them reports the replica's staleness as readers see it, the same figure within 20 ms and under
100 ms; a replica whose replay is paused is taken out of reads, and reported lagging by all of
them, within one measuring interval of falling 100 ms behind.
"""

import subprocess
import time
from typing import Any

import psycopg
import pytest
import requests

from deploy.local import cluster
from tests.cluster.observability.conftest import sample_value, scrape
from tests.cluster.replicas.conftest import pause_replay, resume_replay

pytestmark = pytest.mark.cluster

REPLICA = "replica"


def _router_lag(port: int) -> dict:
    response = requests.get(f"http://127.0.0.1:{port}/replicas/debug/status", timeout=10)
    response.raise_for_status()
    return next(state for state in response.json()["replicas"] if state["alias"] == REPLICA)


def _health_lag(port: int) -> dict:
    response = requests.get(f"http://127.0.0.1:{port}/health/detailed", timeout=10)
    return response.json()["checks"]["database:replicationLag"][0]


def _metric_lag_ms(port: int) -> float:
    return sample_value(scrape(port), "app_replica_lag_seconds", {"replica": REPLICA}) * 1000


def _command() -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(cluster.VENV_BIN / "python"), str(cluster.REPO / "manage.py"), "replicas", "status"],
        capture_output=True, text=True, timeout=60, cwd=cluster.REPO,
    )  # fmt: skip


def _command_lag_ms(output: str) -> float:
    rows = [line.split() for line in output.splitlines() if line.startswith(REPLICA)]
    return float(rows[-1][2])  # the first row is the header


def _on_primary(cluster_settings: cluster.Settings, sql: str) -> Any:
    with psycopg.connect(
        host="127.0.0.1", port=cluster_settings.pg_primary_port, dbname=cluster_settings.db_name,
        user=cluster_settings.db_user, password=cluster_settings.db_password, autocommit=True,
    ) as conn:  # fmt: skip
        row = conn.execute(sql).fetchone()
        assert row is not None
        return row[0]


def _inserted(cluster_settings: cluster.Settings) -> int:
    return int(
        _on_primary(cluster_settings, "SELECT count(*) FROM replicas_routingprobe WHERE note = 'load'")
    )


def test_router_health_metric_and_command_agree_under_a_steady_write_load(
    cluster_settings, primary_write_load
):
    # given 300 transactions a second on the primary, and the primary committing synchronously
    port = cluster_settings.app_ports[0]
    assert _on_primary(cluster_settings, "SHOW synchronous_commit") == "on"
    before = _inserted(cluster_settings)
    primary_write_load(seconds=20, rate=300)
    time.sleep(2.0)  # every measuring thread has sampled the load
    # when the router's view, the probe and the metric are read side by side, over 10 s
    readings = []
    started = time.monotonic()
    while time.monotonic() - started < 10:
        router, health, metric = _router_lag(port), _health_lag(port), _metric_lag_ms(port)
        readings.append(
            (router["status"], router["lag_ms"], health["status"], health["observedValue"], metric)
        )
        time.sleep(0.5)
    command = _command()
    rate = (_inserted(cluster_settings) - before) / (time.monotonic() - started + 2.0)
    # then the load was steady, every reading says healthy, the figures agree and stay under 100 ms
    assert rate > 250, f"the load reached only {rate:.0f} transactions a second"
    assert command.returncode == 0, command.stdout + command.stderr
    assert _command_lag_ms(command.stdout) < 100
    for router_status, router_ms, health_status, health_ms, metric_ms in readings:
        assert (router_status, health_status) == ("healthy", "pass"), readings
        assert max(router_ms, health_ms, metric_ms) < 100, readings
        assert max(router_ms, health_ms, metric_ms) - min(router_ms, health_ms, metric_ms) <= 20, readings
    print(f"{rate:.0f} tx/s; (router, health, metric) ms: {[(r[1], r[3], round(r[4], 1)) for r in readings]}")


def test_a_replica_whose_replay_is_paused_is_reported_lagging_within_one_interval(
    cluster_settings, primary_write_load
):
    # given writes going to the primary, and the router reporting the replica healthy
    port = cluster_settings.app_ports[0]
    primary_write_load(seconds=30, rate=100)
    deadline = time.monotonic() + 10
    while _router_lag(port)["status"] != "healthy":
        assert time.monotonic() < deadline, "the replica never looked healthy"
        time.sleep(0.2)
    try:
        # when its replay stops
        pause_replay(cluster_settings)
        paused_at = time.monotonic()
        while _router_lag(port)["status"] != "lagging":
            assert time.monotonic() - paused_at < 5, "the router never saw the paused replica"
            time.sleep(0.05)
        noticed = time.monotonic() - paused_at
        # the probe caches its answer for a second (HEALTH_CACHE_SECONDS), and every process
        # measures on its own phase: each says so within its next interval
        while (health := _health_lag(port))["status"] != "warn" or (metric_ms := _metric_lag_ms(port)) <= 100:
            assert time.monotonic() - paused_at < 0.1 + 2 * 1.0 + 1.0, (health, metric_ms)
            time.sleep(0.05)
        reported = time.monotonic() - paused_at
        command = _command()
    finally:
        resume_replay(cluster_settings)
    # then it was out of reads within one interval (1 s) of its lag passing 100 ms; the probe,
    # the metric and the command said so too
    # (0.1 s to fall behind, one 1 s interval, 0.5 s for a busy 2-core machine's scheduling)
    assert noticed <= 0.1 + 1.0 + 0.5, f"noticed {noticed:.2f} s after the pause"
    assert health["status"] == "warn" and health["observedValue"] > 100, health
    assert metric_ms > 100
    assert command.returncode == 1 and "lagging" in command.stdout, command.stdout + command.stderr
    print(f"router: lagging {noticed:.2f} s after the pause; probe and metric {reported:.2f} s")
