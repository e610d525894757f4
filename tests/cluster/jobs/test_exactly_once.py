"""Exactly once per tick on the real cluster: three beats and three workers, jobs every 2 s.

One module, one restart of the app tier's workers and beats with short intervals (see
conftest); the tests then break things (SIGKILL, SIGSTOP, stopped Redis nodes and beats)
and read the ledger and the messages in the cluster's own database.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from datetime import timedelta

import pytest

from deploy.local import cluster
from tests.cluster.jobs.conftest import (
    INTERVAL,
    JOBS,
    LOCK_TTL,
    SERVERS,
    TEST_ENV,
    WINDOW,
    ClusterDb,
    add_contacts,
    add_recurring,
    next_tick,
    now,
    sleep_until,
    start,
    ticks,
    tier_restarted_by_others,
)
from tests.support import signal_service_group, wait_until

# The module restarts the jobs tier before and after its tests, and the first test follows a
# two-minute timeline: more than the suite's 300 s per test on a busy machine.
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]

PERIOD = 120.0
BURST = 20  # recurring messages due at the same tick: a run long enough to be caught mid-way
CONTACTS = 10
RUN_OUTCOMES = ("running", "success", "failed", "lost-lock", "skipped-missed")


def running_run(db: ClusterDb, tick) -> dict | None:
    rows = [
        row
        for row in db.runs("recurring-messages", tick, tick)
        if row["outcome"] == "running" and not row["superseded"]
    ]
    return rows[0] if rows else None


def _restarted_by_others(cfg: cluster.Settings) -> str:
    foreign = tier_restarted_by_others(cfg)
    return f"; another process restarted {foreign} mid-test: rerun" if foreign else ""


def writes_after_losing_the_lock(db: ClusterDb, job: str, since) -> list[tuple]:
    """Runs that committed a fenced write after a newer lock grant had started a run.

    A run's ``last_write_at`` is stamped inside its last fenced transaction; a run with a newer
    token records ``started`` only after its token was issued, which the fence orders after
    every older holder's commit. So a newer run starting before an older run's last write
    would be a write committed after the lock was lost.
    """
    return db.rows(
        "SELECT old.id, old.lock_token, old.last_write_at, min(new.started) FROM jobs_jobrun old"
        " JOIN jobs_jobrun new ON new.job = old.job AND new.lock_token > old.lock_token"
        " WHERE old.job = %s AND old.started >= %s AND old.last_write_at IS NOT NULL AND new.started >= %s"
        " GROUP BY old.id, old.lock_token, old.last_write_at HAVING min(new.started) < old.last_write_at",
        job,
        since,
        since,
    )


def test_every_tick_runs_exactly_once_through_kills_pauses_and_outages(
    fast_jobs_tier, cluster_db, church, cluster_settings
):
    cfg = cluster_settings
    # given 10 contacts, a recurring message due at every tick of the next two minutes, and two
    # bursts of 30 messages due at one tick each (long runs, to be killed and paused mid-way)
    add_contacts(cluster_db, church, CONTACTS)
    p0 = next_tick(now() + timedelta(seconds=3))
    p1 = p0 + timedelta(seconds=PERIOD)
    period = ticks(p0, p1)
    kill_tick, pause_tick = p0 + timedelta(seconds=16), p0 + timedelta(seconds=60)
    due = [*period, *[kill_tick] * BURST, *[pause_tick] * BURST]
    for at in due:
        add_recurring(cluster_db, church, at)
    since = now()

    # when a worker is SIGKILLed in the middle of the first burst's run (then started again)
    sleep_until(kill_tick - timedelta(seconds=0.5))
    killed = wait_until(
        lambda: running_run(cluster_db, kill_tick),
        timeout=8,
        interval=0.02,
        message=lambda: f"the first burst's run was never seen running{_restarted_by_others(cfg)}",
    )
    assert tier_restarted_by_others(cfg) == [], "another process restarted the tier mid-test: rerun"
    signal_service_group(cfg, f"worker-{killed['server']}", signal.SIGKILL)
    time.sleep(1)
    start(cfg, f"worker-{killed['server']}", TEST_ENV)

    # and one lock node is stopped for 20 s
    sleep_until(p0 + timedelta(seconds=30))
    cluster.stop(["redis-lock-3"], cfg)
    try:
        sleep_until(p0 + timedelta(seconds=50))
    finally:
        start(cfg, "redis-lock-3")

    # and the worker running the second burst is SIGSTOPped past its lock's TTL, then continued
    sleep_until(pause_tick - timedelta(seconds=0.5))
    paused = wait_until(
        lambda: running_run(cluster_db, pause_tick),
        timeout=8,
        interval=0.02,
        message=lambda: f"the second burst's run was never seen running{_restarted_by_others(cfg)}",
    )
    assert tier_restarted_by_others(cfg) == [], "another process restarted the tier mid-test: rerun"
    signal_service_group(cfg, f"worker-{paused['server']}", signal.SIGSTOP)
    try:
        time.sleep(LOCK_TTL + 3)
    finally:
        signal_service_group(cfg, f"worker-{paused['server']}", signal.SIGCONT)

    # and one server's beat is stopped for 20 s
    sleep_until(p0 + timedelta(seconds=80))
    cluster.stop(["beat-app2"], cfg)
    try:
        sleep_until(p0 + timedelta(seconds=100))
    finally:
        start(cfg, "beat-app2", TEST_ENV)
    sleep_until(p1 + timedelta(seconds=WINDOW / 2 + 3))
    assert tier_restarted_by_others(cfg) == [], "another process restarted the tier mid-test: rerun"

    # then every tick of the period has exactly one successful run, for both jobs, none missed
    for job in JOBS:
        rows = cluster_db.runs(job, p0, p1)
        successes = Counter(row["tick"] for row in rows if row["outcome"] == "success")
        assert {tick: successes[tick] for tick in period if successes[tick] != 1} == {}, job
        assert [row for row in rows if row["outcome"] == "skipped-missed"] == [], job
        live = Counter(
            row["tick"] for row in rows if row["outcome"] in RUN_OUTCOMES and not row["superseded"]
        )
        assert max(live.values()) == 1, job

    # and the killed and the paused runs were taken over: closed as lost-lock, run again once
    for victim, tick in ((killed, kill_tick), (paused, pause_tick)):
        rows = {row["id"]: row for row in cluster_db.runs("recurring-messages", tick, tick)}
        assert rows[victim["id"]]["outcome"] == "lost-lock" and rows[victim["id"]]["superseded"]
        [success] = [row for row in rows.values() if row["outcome"] == "success"]
        assert success["attempt"] > victim["attempt"] and success["lock_token"] > victim["lock_token"]

    # and no outbound message is duplicated, none is missing, every schedule moved on
    duplicates = cluster_db.value(
        "SELECT count(*) FROM (SELECT 1 FROM messaging_message WHERE church_id = %s"
        " GROUP BY recurring_message_id, occurrence, contact_id HAVING count(*) > 1) AS d",
        church,
    )
    assert duplicates == 0
    assert (
        cluster_db.value("SELECT count(*) FROM messaging_message WHERE church_id = %s", church)
        == len(due) * CONTACTS
    )
    assert (
        cluster_db.value(
            "SELECT count(*) FROM messaging_recurringmessage WHERE church_id = %s AND next_run_at <= %s",
            church,
            p1,
        )
        == 0
    )

    # and no worker committed a fenced write after it had lost its lock
    for job in JOBS:
        assert writes_after_losing_the_lock(cluster_db, job, since) == [], job


def test_ticks_missed_while_every_beat_was_down_run_once_and_older_ones_are_recorded_skipped(
    fast_jobs_tier, cluster_db, cluster_settings
):
    cfg = cluster_settings
    beats = [f"beat-{server}" for server in SERVERS]
    # given every beat stopped for longer than the catch-up window
    cluster.stop(beats, cfg)
    stopped = now()
    try:
        time.sleep(WINDOW + 8)
        # when one beat comes back
        restarted = now()
        start(cfg, "beat-app1", TEST_ENV)
        time.sleep(INTERVAL * 2 + 2)
    finally:
        for beat in beats[1:]:
            start(cfg, beat, TEST_ENV)

    # then, for each job, the ticks of the window before the first new tick ran once each
    # (caught up, oldest first), and the older ticks of the outage were recorded as missed
    for job in JOBS:
        rows = cluster_db.runs(job, stopped - timedelta(seconds=WINDOW), now())
        [recovery_tick] = sorted(
            row["tick"]
            for row in rows
            if row["outcome"] == "success"
            and not row["caught_up"]
            and row["started"] >= restarted
            and row["tick"] >= next_tick(restarted) - timedelta(seconds=INTERVAL)
        )[:1]
        outage = ticks(stopped + timedelta(seconds=2 * INTERVAL), recovery_tick - timedelta(seconds=INTERVAL))
        window_start = recovery_tick - timedelta(seconds=WINDOW)
        live = {row["tick"]: row for row in rows if row["outcome"] in RUN_OUTCOMES and not row["superseded"]}
        assert len([r for r in rows if r["outcome"] in RUN_OUTCOMES and not r["superseded"]]) == len(live)
        expected = {
            tick: ("success", True) if tick >= window_start else ("skipped-missed", False) for tick in outage
        }
        found = {
            tick: (live[tick]["outcome"], live[tick]["caught_up"]) if tick in live else None
            for tick in outage
        }
        assert found == expected, job
        assert ("skipped-missed", False) in expected.values() and ("success", True) in expected.values()
        caught_up = [row for row in rows if row["caught_up"] and row["outcome"] == "success"]
        assert [row["tick"] for row in sorted(caught_up, key=lambda row: row["started"])] == sorted(
            row["tick"] for row in caught_up
        ), "caught up oldest first"


def test_without_a_lock_quorum_no_job_runs_and_the_ticks_run_once_it_is_back(
    fast_jobs_tier, cluster_db, cluster_settings
):
    cfg = cluster_settings
    nodes = ["redis-lock-1", "redis-lock-2"]
    # given two of the three lock nodes stopped
    cluster.stop(nodes, cfg)
    down = now()
    try:
        # when the jobs come due for 4 ticks
        time.sleep(INTERVAL * 4 + 1)
        up = now()
    finally:
        for node in nodes:
            start(cfg, node)

    # then no job started a run while the quorum was lost: every delivery failed closed
    during = cluster_db.rows(
        "SELECT job, outcome, count(*) FROM jobs_jobrun WHERE started >= %s AND started <= %s"
        " GROUP BY job, outcome",
        down + timedelta(seconds=0.5),
        up,
    )
    outcomes = {(job, outcome): count for job, outcome, count in during}
    assert {(job, outcome): n for (job, outcome), n in outcomes.items() if outcome in RUN_OUTCOMES} == {}
    for job in JOBS:
        assert outcomes.get((job, "skipped-unavailable"), 0) >= 3, job

    # and once the nodes are back, each tick of the outage runs exactly once (catch-up)
    time.sleep(INTERVAL * 2 + 2)
    outage = ticks(down + timedelta(seconds=INTERVAL), up)
    for job in JOBS:
        successes = Counter(
            row["tick"] for row in cluster_db.runs(job, outage[0], outage[-1]) if row["outcome"] == "success"
        )
        assert {tick: successes[tick] for tick in outage if successes[tick] != 1} == {}, job
