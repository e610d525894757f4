"""The PostgreSQL leader killed whole (Patroni and its postmaster) under a steady API load.

Bounds (issue 20): writes back within 15 s, reads within 5 s, no acknowledged write lost, each
sent once (within the bound and two sweep intervals), and the old leader back as a streaming
replica (through pg_rewind where its WAL diverged) within 60 s of being started again through
the cluster's tooling.
"""

import subprocess
import time

import pytest
import requests

from bench.exactly_once import key_prefix
from bench.faults import FAULTS, wait_delivered
from deploy.local import cluster
from deploy.local.cluster import patroni
from tests.cluster.ha.conftest import (
    full_redundancy,
    kill_member,
    log_since,
    log_size,
    messages_missing,
)
from tests.cluster.ha.proof import sends_deadline

pytestmark = pytest.mark.cluster

WRITES_BACK_WITHIN = 15.0
READS_BACK_WITHIN = 5.0
REJOIN_WITHIN = 60.0


def test_killing_the_leader_promotes_the_replica_and_the_old_leader_rejoins(
    cluster_settings, api_load, exclusive_database
):
    cfg = cluster_settings
    # given full redundancy and a steady read+write load through NGINX
    roles = full_redundancy(cfg)
    leader = next(name for name, role in roles.items() if role == patroni.LEADER)
    replica = next(name for name, role in roles.items() if role == patroni.REPLICA)
    load = api_load()
    time.sleep(3.0)
    assert load.failed("write") == [] and load.failed("read") == [], "failures before the fault"
    # when the whole leader member is killed and left down
    log_offset = log_size(cfg, leader)
    kill_member(cfg, leader)
    killed_at = time.monotonic()
    while patroni.member_role(cfg, replica) != patroni.LEADER:
        assert time.monotonic() - killed_at < 30, f"{replica} not promoted: {patroni.roles(cfg)}"
        time.sleep(0.1)
    promoted_after = time.monotonic() - killed_at
    time.sleep(max(0.0, WRITES_BACK_WITHIN + 3 - (time.monotonic() - killed_at)))
    # then writes and reads came back within their bounds
    writes_out = load.unavailable_for("write", killed_at)
    reads_out = load.unavailable_for("read", killed_at)
    writes_back, reads_back = load.back_after("write", killed_at), load.back_after("read", killed_at)
    slowest_write, slowest_read = load.slowest("write", killed_at), load.slowest("read", killed_at)
    # and the old leader, started again by the tooling, rejoins as a streaming replica
    restarted_at = time.monotonic()
    cluster.start_service(cluster.services(cfg)[leader], cfg)
    rejoined = patroni.wait_member_ready(
        cfg, leader, alive=lambda: cluster.recorded_pid(cluster.services(cfg)[leader], cfg) is not None,
        timeout=REJOIN_WITHIN,
    )  # fmt: skip
    rejoined_after = time.monotonic() - restarted_at
    time.sleep(2.0)
    load.stop()
    failed_writes, failed_reads = load.failed("write"), load.failed("read")
    acknowledged = load.acknowledged_writes()
    rejoin_log = log_since(cfg, leader, log_offset)
    print(
        f"\nleader {leader} killed: {replica} promoted after {promoted_after:.1f} s; "
        f"writes failed for {writes_out:.1f} s ({len(failed_writes)} of {len(load.of('write'))}), "
        f"reads for {reads_out:.1f} s ({len(failed_reads)} of {len(load.of('read'))}); "
        f"the first write sent after the kill succeeded {writes_back:.1f} s after it, the first read "
        f"{reads_back:.1f} s; slowest write {slowest_write:.1f} s, read {slowest_read:.1f} s; "
        f"{leader} rejoined as {rejoined} {rejoined_after:.1f} s after its restart; "
        f"pg_rewind ran: {'pg_rewind' in rejoin_log}"
    )
    assert writes_out <= WRITES_BACK_WITHIN, [vars(a) for a in failed_writes[-3:]]
    assert reads_out <= READS_BACK_WITHIN, [vars(a) for a in failed_reads[-3:]]
    assert writes_back <= WRITES_BACK_WITHIN
    assert reads_back <= READS_BACK_WITHIN
    assert rejoined == patroni.REPLICA
    assert rejoined_after <= REJOIN_WITHIN
    # the old leader's diverged WAL was rewound (or Patroni found there was nothing to rewind)
    assert "pg_rewind" in rejoin_log or "no rewind" in rejoin_log.lower(), rejoin_log[-2000:]
    # and no acknowledged write was lost
    assert acknowledged, "no write succeeded"
    assert messages_missing(cfg, acknowledged) == []
    # and every acknowledged message reached the provider once, within the bound and two sweeps
    sent, _ = wait_delivered(
        cfg,
        acknowledged,
        key_prefix=key_prefix(),
        deadline=killed_at + sends_deadline(FAULTS["postgres-leader"]),
    )
    assert sent.problems == []
    swapped = full_redundancy(cfg)
    assert swapped == {leader: patroni.REPLICA, replica: patroni.LEADER}
    # and the router's lag measurement (manage.py replicas status) sees the rejoined replica healthy
    status = subprocess.run(
        [str(cluster.VENV_BIN / "python"), str(cluster.REPO / "manage.py"), "replicas", "status"],
        capture_output=True, text=True, timeout=60, cwd=cluster.REPO,
    )  # fmt: skip
    assert status.returncode == 0, status.stdout + status.stderr
    assert "healthy" in status.stdout
    # and a user reads its own writes at once (read-your-writes by WAL position on the new timeline),
    # while others' reads go to the rejoined replica
    assert _reads_after_own_writes(cfg) == {"found": 10}
    # and names the members in their new roles
    new_leader, new_replica = (f"127.0.0.1:{patroni.member(cfg, name).pg_port}" for name in (replica, leader))
    assert f"on {new_leader}" in status.stdout and new_replica in status.stdout, status.stdout


def test_a_planned_switchover_fails_no_request(cluster_settings, api_load, exclusive_database):
    cfg = cluster_settings
    # given full redundancy and a steady load
    roles = full_redundancy(cfg)
    leader = next(name for name, role in roles.items() if role == patroni.LEADER)
    replica = next(name for name, role in roles.items() if role == patroni.REPLICA)
    load = api_load()
    time.sleep(3.0)
    # when the leader role is handed over as the runbook does it (docs/runbooks/postgres-switchover.md)
    started = time.monotonic()
    patroni.patronictl(
        cfg, "switchover", patroni.SCOPE, "--leader", leader, "--candidate", replica, "--force"
    )
    swapped = full_redundancy(cfg)
    took = time.monotonic() - started
    time.sleep(3.0)
    load.stop()
    # then the roles swapped, no request failed, and every acknowledged write exists
    print(
        f"\nswitchover {leader} -> {replica}: redundant again after {took:.1f} s; slowest write "
        f"{load.slowest('write', started):.1f} s, read {load.slowest('read', started):.1f} s"
    )
    assert swapped == {leader: patroni.REPLICA, replica: patroni.LEADER}
    # The old leader's fast shutdown ends the transactions running on it ("terminating connection
    # due to administrator command"): a request in flight at that instant may fail (0 in most runs;
    # 1 seen with one core kept busy). Any other failure, or one sent after the roles swapped, is
    # a defect.
    failed = load.failed("write") + load.failed("read")
    assert len(failed) <= 1, failed
    assert all(started <= answer.sent <= started + took for answer in failed), failed
    assert messages_missing(cfg, load.acknowledged_writes()) == []


def _reads_after_own_writes(cfg, count: int = 10) -> dict[str, int]:
    """Write a probe row through NGINX and read it back at once, ``count`` times; what came back."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(cfg.state_dir / "nginx" / "tls.crt")
    base = cfg.edge_url()
    outcomes: dict[str, int] = {}
    for _ in range(count):
        written = session.post(f"{base}/replicas/debug/probes", timeout=20)
        assert written.status_code == 201, written.text
        read = session.get(f"{base}/replicas/debug/probes/{written.json()['id']}", timeout=20)
        outcome = "found" if read.status_code == 200 else f"status {read.status_code}"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes
