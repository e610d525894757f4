"""One app server, one etcd member and one lock Redis node SIGKILLed under a steady load through
the edge, in the proof's form (tests/cluster/ha/proof.py): no request failed beyond the bound,
nothing acknowledged was lost or sent twice, every message went out, and the component was
redundant again within 60 s of ``python -m deploy.local.cluster up``."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings

from bench.faults import FAULTS, full_redundancy
from deploy.local.cluster import patroni
from tests.cluster.db import connect
from tests.cluster.ha.proof import DOWN_FOR, assert_proof, run_fault

pytestmark = pytest.mark.cluster

RUN_OUTCOMES = ("running", "success", "failed", "lost-lock", "skipped-missed")  # not the skipped deliveries
# The jobs that run every minute on the cluster; a lock node's loss must not cost either a tick.
MINUTE_JOBS = {
    "recurring-messages": "MESSAGING_RECURRING_MESSAGES_INTERVAL_SECONDS",
    "messages-sweep": "MESSAGING_SWEEP_INTERVAL_SECONDS",
}


def test_one_app_server_killed_fails_no_idempotent_request(cluster_settings, api_load, exclusive_app_servers):
    # given full redundancy and a steady load; when one app server's master and workers are killed
    run = run_fault(cluster_settings, FAULTS["app-server"], api_load)
    print("\n" + run.summary())
    # then no read failed (NGINX retries them on the others), only POSTs in flight on it, and the
    # proof holds
    assert run.killed == [cluster_settings.server_names[-1]]
    assert run.load.failed("read") == []
    assert_proof(run)


def test_one_etcd_member_lost_changes_nothing(cluster_settings, api_load, exclusive_database):
    cfg = cluster_settings
    changed: list[str] = []

    def roles_hold(killed_at: float) -> None:
        while time.monotonic() - killed_at < DOWN_FOR:
            during = {name: str(role) for name, role in patroni.roles(cfg).items()}
            if during != run_roles:
                changed.append(f"{time.monotonic() - killed_at:.1f} s after the kill: {during}")
            time.sleep(1.0)

    run_roles = full_redundancy(cfg)
    # given full redundancy and a steady load; when one etcd member is killed for 20 s
    run = run_fault(cfg, FAULTS["etcd-member"], api_load, down_for=0.0, while_down=roles_hold)
    print("\n" + run.summary())
    # then no request failed, the roles stayed throughout, and the proof holds
    assert run.load.failed("write") == [] and run.load.failed("read") == []
    assert run.roles_before == run_roles
    assert changed == []
    assert {name: str(role) for name, role in patroni.roles(cfg).items()} == run_roles
    assert_proof(run)


def _minute_tick_after(moment: datetime, interval: float) -> datetime:
    stamp = (int(moment.timestamp() // interval) + 1) * interval
    return datetime.fromtimestamp(stamp, tz=UTC)


def test_one_lock_redis_node_killed_fails_no_request_and_misses_no_tick(cluster_settings, api_load):
    cfg = cluster_settings
    intervals = {job: float(getattr(settings, name)) for job, name in MINUTE_JOBS.items()}
    ticks: dict[str, datetime] = {}

    def one_tick_of_each_job_ran(killed_at: float) -> None:
        # Down until every job's first tick after the kill has a finished run in the ledger.
        killed_wall = datetime.now(UTC) - timedelta(seconds=time.monotonic() - killed_at)
        ticks.update({job: _minute_tick_after(killed_wall, interval) for job, interval in intervals.items()})
        deadline = time.monotonic() + max(intervals.values()) + 60
        with connect(cfg, cfg.pgbouncer_port) as conn:
            while time.monotonic() < deadline:
                finished = [
                    job for job, tick in ticks.items()
                    if conn.execute("SELECT count(*) FROM jobs_jobrun WHERE job = %s AND tick = %s AND NOT"
                                    " superseded AND outcome = ANY(%s)",
                                    [job, tick, list(RUN_OUTCOMES[1:])]).fetchone()[0]  # type: ignore[index]
                ]  # fmt: skip
                if len(finished) == len(ticks):
                    return
                time.sleep(1.0)

    # given full redundancy and a steady load; when one lock node is killed and stays down across
    # one tick of every minute job
    run = run_fault(cfg, FAULTS["lock-redis"], api_load, down_for=0.0, while_down=one_tick_of_each_job_ran)
    print("\n" + run.summary() + f"; ticks while down: {ticks}")
    # then no request failed, and every job's tick ran exactly once with success, none missed
    assert run.load.failed("write") == [] and run.load.failed("read") == []
    with connect(cfg, cfg.pgbouncer_port) as conn:
        for job, tick in ticks.items():
            rows = conn.execute(
                "SELECT outcome, superseded FROM jobs_jobrun WHERE job = %s AND tick = %s", [job, tick]
            ).fetchall()
            live = [outcome for outcome, superseded in rows if not superseded and outcome in RUN_OUTCOMES]
            assert live == ["success"], f"{job} at {tick}: {rows}"
            assert not any(outcome == "skipped-missed" for outcome, _ in rows), f"{job} at {tick}: {rows}"
    assert_proof(run)
