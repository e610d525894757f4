"""Fault injection on the replica: stopped, then lagging. Each test restores what it broke."""

import threading
import time

import pytest
import requests

from deploy.local import cluster
from deploy.local.cluster import patroni
from tests.cluster.replicas.conftest import pause_replay, resume_replay, wait_until_served_by
from tests.support import manage

pytestmark = pytest.mark.cluster


def test_reads_fail_over_to_the_primary_when_the_replica_stops_and_come_back(
    cluster_settings, new_user, old_probe
):
    # given reads served by the replica, and a user reading continuously
    user = new_user()
    answers: list[tuple[float, int, str]] = []
    stop_reading = threading.Event()

    def read_continuously() -> None:
        while not stop_reading.is_set():
            # Stamped when sent: a read the replica served just before the stop can come back
            # more than a second later on a busy machine.
            sent_at = time.monotonic()
            try:
                response = user.read(old_probe)
            except requests.RequestException as exc:  # a failure too, not a dead thread
                answers.append((sent_at, -1, repr(exc)))
                continue
            server = response.json().get("server", "") if response.status_code == 200 else ""
            answers.append((sent_at, response.status_code, server))
            time.sleep(0.01)

    replica = patroni.member_with_role(cluster_settings, patroni.REPLICA)
    reader = threading.Thread(target=read_continuously)
    reader.start()
    try:
        time.sleep(0.5)
        # when the replica stops (whichever member is the replica now)
        cluster.stop([replica], cluster_settings)
        stopped_at = time.monotonic()
        time.sleep(2.0)
    finally:
        cluster.start_service(cluster.services(cluster_settings)[replica], cluster_settings)
        patroni.wait_member_ready(cluster_settings, replica, alive=lambda: True)
        restarted_at = time.monotonic()
        stop_reading.set()
        reader.join(timeout=30)
    # then no request failed, and every read sent from 1 s after the stop came from the primary
    failed = [(round(t - stopped_at, 2), status, what) for t, status, what in answers if status != 200]
    assert failed == []
    after_stop = [server for t, _, server in answers if stopped_at + 1.0 <= t < restarted_at]
    assert after_stop and set(after_stop) == {"primary"}
    # and once the replica is back, reads return to it
    took = wait_until_served_by(user, old_probe, "replica", timeout=20)
    print(f"{len(answers)} reads during the outage; back on the replica {took:.1f} s after restart")


def test_reads_avoid_a_replica_whose_replay_is_paused_and_return_after_resume(
    cluster_settings, new_user, old_probe, primary_write_load
):
    # given reads served by the replica and writes going to the primary
    user = new_user()
    primary_write_load(seconds=60, pause=0.01)
    try:
        # when the replica stops replaying
        pause_replay(cluster_settings)
        # then, once its lag passes 100 ms, reads go to the primary
        moved_after = wait_until_served_by(user, old_probe, "primary", timeout=10)
        status = manage("replicas", "status")
    finally:
        resume_replay(cluster_settings)
    assert status.returncode == 1, status.stdout + status.stderr
    assert "lagging" in status.stdout
    # and after the resume they come back
    back_after = wait_until_served_by(user, old_probe, "replica", timeout=15)
    print(
        f"reads left the paused replica {moved_after:.1f} s after the pause, "
        f"came back {back_after:.1f} s after resume"
    )
