"""Helpers for the replica tests through NGINX: probe rows, a primary write load, replay control."""

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import requests

from deploy.local import cluster
from deploy.local.cluster import patroni
from tests.cluster.db import connect
from tests.support import psql, stop_process, wait_until


@dataclass
class ProbeClient:
    """One user agent talking to the diagnostic endpoints through NGINX."""

    session: requests.Session
    base: str

    def write(self) -> dict:
        response = self.session.post(f"{self.base}/replicas/debug/probes", timeout=10)
        assert response.status_code == 201, response.text
        return response.json()

    def read(self, probe_id: int) -> requests.Response:
        return self.session.get(f"{self.base}/replicas/debug/probes/{probe_id}", timeout=10)


@pytest.fixture
def new_user(cluster_settings: cluster.Settings, nginx_url: str) -> Callable[[], ProbeClient]:
    """A fresh user agent (own cookie jar) per call."""

    def make() -> ProbeClient:
        session = requests.Session()
        session.trust_env = False
        session.verify = str(cluster_settings.state_dir / "nginx" / "tls.crt")
        return ProbeClient(session=session, base=nginx_url)

    return make


def reads_served_by(user: ProbeClient, probe_id: int, count: int) -> list[str]:
    servers = []
    for _ in range(count):
        response = user.read(probe_id)
        assert response.status_code == 200, response.text
        servers.append(response.json()["server"])
    return servers


def wait_until_served_by(user: ProbeClient, probe_id: int, server: str, timeout: float) -> float:
    """Read until 12 answers in a row come from ``server``; the seconds it took."""
    started = time.monotonic()
    in_a_row = 0

    def twelve_in_a_row() -> bool:
        nonlocal in_a_row
        response = user.read(probe_id)
        assert response.status_code == 200, response.text
        in_a_row = in_a_row + 1 if response.json()["server"] == server else 0
        return in_a_row >= 12

    wait_until(twelve_in_a_row, timeout=timeout, interval=0.02, message=f"reads did not move to the {server}")
    return time.monotonic() - started


@pytest.fixture
def old_probe(new_user: Callable[[], ProbeClient]) -> int:
    """A probe row every replica has replayed, and every app worker measuring its replica."""
    writer = new_user()
    probe_id = writer.write()["id"]
    reader = new_user()
    wait_until(  # another user: eventually consistent
        lambda: reader.read(probe_id).status_code != 404,
        timeout=15,
        message="the probe row never reached the replica",
    )
    wait_until_served_by(reader, probe_id, "replica", timeout=15)
    return probe_id


_LOAD_SCRIPT = """
import sys, time, psycopg
port, dbname, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
seconds, pause, rate = float(sys.argv[5]), float(sys.argv[6]), float(sys.argv[7])
conn = psycopg.connect(host="127.0.0.1", port=port, dbname=dbname, user=user, password=password,
                       autocommit=True, prepare_threshold=None)
started = time.monotonic()
deadline, done = started + seconds, 0
while time.monotonic() < deadline:
    conn.execute("INSERT INTO replicas_routingprobe (note, created_at) VALUES ('load', now())")
    done += 1
    if pause:
        time.sleep(pause)
    elif rate:  # paced: transaction n starts at n / rate seconds
        time.sleep(max(0.0, started + done / rate - time.monotonic()))
"""


@pytest.fixture
def primary_write_load(cluster_settings: cluster.Settings) -> Iterator[Callable[..., subprocess.Popen]]:
    """Start another process writing to the primary directly (bounded in time; stopped after the
    test). ``pause`` seconds between inserts leaves the two cores to the app servers; ``rate``
    paces the inserts (autocommit: one transaction each) to that many a second instead."""
    started: list[subprocess.Popen] = []

    def start(seconds: float = 60.0, pause: float = 0.0, rate: float = 0.0) -> subprocess.Popen:
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _LOAD_SCRIPT,
                str(cluster_settings.pg_primary_port),
                cluster_settings.db_name,
                cluster_settings.db_user,
                cluster_settings.db_password,
                str(seconds),
                str(pause),
                str(rate),
            ]
        )
        started.append(process)
        return process

    yield start
    for process in started:
        stop_process(process, timeout=10)
    if started:
        with connect(cluster_settings, cluster_settings.pg_primary_port) as conn:
            conn.execute("DELETE FROM replicas_routingprobe WHERE note = 'load'")


def psql_on_replica(cluster_settings: cluster.Settings, sql: str) -> str:
    """Run SQL on the member that is the replica now, as the ``postgres`` superuser over the unix socket."""
    replica = patroni.member(cluster_settings, patroni.member_with_role(cluster_settings, patroni.REPLICA))
    return psql(cluster_settings, sql, port=replica.pg_port)


def pause_replay(cluster_settings: cluster.Settings) -> None:
    """Stop the replica replaying WAL. Patroni resumes a paused replay by itself, so the cluster
    goes into maintenance mode first (no failover until ``resume_replay``)."""
    patroni.patronictl(cluster_settings, "pause", "--wait")
    psql_on_replica(cluster_settings, "SELECT pg_wal_replay_pause()")


def resume_replay(cluster_settings: cluster.Settings) -> None:
    psql_on_replica(cluster_settings, "SELECT pg_wal_replay_resume()")
    patroni.patronictl(cluster_settings, "resume", "--wait")
