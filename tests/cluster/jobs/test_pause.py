"""``manage.py jobs pause`` on the real cluster: every server's deliveries skip the job and say
so in the ledger, until ``jobs resume``; three beats and three workers, jobs every 2 s."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from tests.cluster.jobs.conftest import SERVERS, ClusterDb, now
from tests.support import manage, wait_until

pytestmark = pytest.mark.cluster

JOB = "phone-linking-recovery"


def jobs_command(*args: str):
    # the local settings read the cluster's ports, so this writes the cluster's own database
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.local"}
    return manage("jobs", *args, env=env)


def test_a_paused_job_is_skipped_on_every_server_until_resumed(fast_jobs_tier, cluster_db: ClusterDb):
    paused = jobs_command("pause", JOB, "--by", "cluster-test", "--reason", "pause test")
    assert paused.returncode == 0, paused.stderr
    try:
        since = now() + timedelta(seconds=2.5)  # deliveries already in flight may still run

        def skips() -> list[dict]:
            return [
                row
                for row in cluster_db.runs(JOB, since, now())
                if row["started"] >= since and row["outcome"] == "skipped-paused"
            ]

        # when the beats keep delivering its ticks
        wait_until(
            lambda: {row["server"] for row in skips()} >= set(SERVERS),
            timeout=30,
            interval=0.5,
            message=lambda: f"servers that recorded skipped-paused: {sorted({r['server'] for r in skips()})}",
        )
        # then every server's worker skipped it and recorded why, and none ran it
        rows = [row for row in cluster_db.runs(JOB, since, now()) if row["started"] >= since]
        assert [row for row in rows if row["outcome"] == "success"] == []
        assert all("paused by cluster-test" in row["error"] for row in skips())
    finally:
        resumed = jobs_command("resume", JOB)
        assert resumed.returncode == 0, resumed.stderr
    # and after resuming, the next ticks run again
    again = now()
    wait_until(
        lambda: [
            row
            for row in cluster_db.runs(JOB, again, now() + timedelta(seconds=10))
            if row["outcome"] == "success"
        ],
        timeout=30,
        interval=0.5,
        message="no server ran the job after its resume",
    )
