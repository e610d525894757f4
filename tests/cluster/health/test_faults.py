"""Probes under real faults: a primary out of reach or paused, paused lock nodes, a stopped replica.

Each test restores what it broke in ``finally`` and waits until the cluster is healthy again.
"Within 3 s" is measured from the moment the fault is in place, and no single probe may take
3 s or more to answer.
"""

import signal
import time

import pytest

from deploy.local import cluster
from deploy.local.cluster import patroni
from tests.cluster.health.conftest import check, first_probe_with, probe, wait_until_healthy_again
from tests.cluster.procs import child_pids
from tests.support import paused

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("healthy_cluster")]


def _is(status_code: int):
    return lambda answer: answer.status_code == status_code


def test_a_primary_out_of_reach_fails_ready_and_detailed_but_not_live(cluster_settings, app_url):
    # Stopping the leader member would have Patroni promote the replica (tests/cluster/ha/): the
    # primary is put out of reach by stopping both HAProxys, which route every connection to it
    # (with one left, the app reaches the primary through the other PgBouncer and its HAProxy).
    routers = ["haproxy", "haproxy2"]
    try:
        # given
        cluster.stop(routers, cluster_settings)
        stopped_at = time.monotonic()

        # when
        ready = first_probe_with(f"{app_url}/health/ready", _is(503), within=3)
        detailed = first_probe_with(f"{app_url}/health/detailed", _is(503), within=3)
        elapsed = time.monotonic() - stopped_at
        live, balancer = probe(f"{app_url}/health/live"), probe(f"{app_url}/health")

        # then
        assert elapsed < 3
        assert max(ready.seconds, detailed.seconds) < 3
        assert check(ready.body, "database:responseTime", "primary")["status"] == "fail"
        assert check(detailed.body, "database:responseTime", "primary")["status"] == "fail"
        assert (live.status_code, balancer.status_code) == (200, 200)
    finally:
        services = cluster.services(cluster_settings)
        for name in routers:
            cluster.start_service(services[name], cluster_settings)
        wait_until_healthy_again(app_url)


def test_a_paused_primary_behind_pgbouncer_fails_ready_within_3_seconds(cluster_settings, side_server):
    # PgBouncer still accepts the connection and the query waits for a server that never answers:
    # only the probe's own deadline ends it. The postmaster and all its children are paused: the
    # postmaster alone would leave the backends behind PgBouncer's server connections answering.
    # The probes go to a server of this test's own: while the database hangs, ordinary requests
    # from other tests would hang too and could hold every sync worker of a cluster server.
    app_url = side_server().url
    leader = patroni.member_with_role(cluster_settings, patroni.LEADER)
    postmaster = patroni.postmaster_pid(cluster_settings, leader)
    assert postmaster is not None
    try:
        # given
        with paused(postmaster, *child_pids(postmaster)):
            paused_at = time.monotonic()

            # when
            ready = first_probe_with(f"{app_url}/health/ready", _is(503), within=3)
            elapsed = time.monotonic() - paused_at
            live = probe(f"{app_url}/health/live")

        # then
        assert elapsed < 3
        assert ready.seconds < 3
        assert check(ready.body, "database:responseTime", "primary").get("output") == "timed out", ready.body
        assert live.status_code == 200
    finally:
        wait_until_healthy_again(app_url)


def test_one_paused_lock_node_warns_and_two_fail_detailed_but_only_warn_web_ready(cluster_settings, app_url):
    paused: list[str] = []
    try:
        # given: one node of three paused (it accepts TCP and never answers)
        cluster.signal_service("redis-lock-1", signal.SIGSTOP, cluster_settings)
        paused.append("redis-lock-1")
        paused_at = time.monotonic()

        # when
        degraded = first_probe_with(
            f"{app_url}/health/detailed",
            lambda answer: check(answer.body, "lock-redis:responseTime", "node-1")["status"] == "fail",
            within=3,
        )
        still_ready = probe(f"{app_url}/health/ready")

        # then
        assert time.monotonic() - paused_at < 3
        assert (degraded.status_code, degraded.body["status"]) == (200, "warn")
        assert check(degraded.body, "lock-redis:quorum")["observedValue"] == 2
        assert check(degraded.body, "lock-redis:quorum")["status"] == "warn"
        assert still_ready.status_code == 200

        # and given: a second node paused, so no majority answers
        cluster.signal_service("redis-lock-2", signal.SIGSTOP, cluster_settings)
        paused.append("redis-lock-2")
        paused_at = time.monotonic()

        # when
        failing = first_probe_with(f"{app_url}/health/detailed", _is(503), within=3)
        still_ready = probe(f"{app_url}/health/ready")

        # then monitoring sees the failure at once, and web readiness only warns: requests take
        # no lock, so a lost quorum must not take every web pod out of service (ADR 0005)
        assert time.monotonic() - paused_at < 3
        assert failing.seconds < 3
        assert check(failing.body, "lock-redis:quorum")["status"] == "fail"
        assert (still_ready.status_code, still_ready.body["status"]) == (200, "warn")
        assert check(still_ready.body, "lock-redis:quorum")["status"] == "fail"
    finally:
        for name in paused:
            cluster.signal_service(name, signal.SIGCONT, cluster_settings)
        wait_until_healthy_again(app_url)


def test_a_stopped_replica_warns_in_detailed_and_leaves_ready_passing(cluster_settings, app_url):
    replica = patroni.member_with_role(cluster_settings, patroni.REPLICA)
    try:
        # given
        cluster.stop([replica], cluster_settings)

        # when
        detailed = first_probe_with(
            f"{app_url}/health/detailed",
            lambda answer: check(answer.body, "database:replicationLag", "replica")["status"] == "fail",
            within=3,
        )
        # (each worker process caches its last answer for a second, so allow one refresh)
        ready = first_probe_with(
            f"{app_url}/health/ready", lambda answer: answer.status_code == 200, within=3
        )

        # then
        assert detailed.status_code == 200
        assert detailed.body["status"] == "warn"
        assert check(ready.body, "database:responseTime", "primary")["status"] == "pass"
    finally:
        cluster.start_service(cluster.services(cluster_settings)[replica], cluster_settings)
        patroni.wait_member_ready(cluster_settings, replica, alive=lambda: True)
        wait_until_healthy_again(app_url)
