"""A beat whose clock is stepped ahead and back (libfaketime, Debian's ``faketime``), alone in the
cluster: it is never silent after the step back, and nothing runs before its tick.

Only ``beat-app1`` runs, under libfaketime with an offset file it re-reads on every clock call;
the other beats are stopped so that no beat with the right time covers for it, and the ledger
is read before they are back. The workers' clocks are right.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from deploy.local import cluster
from tests.cluster.jobs.conftest import INTERVAL, JOBS, TEST_ENV, WINDOW, ClusterDb, now, start, ticks
from tests.programs import missing

pytestmark = pytest.mark.cluster

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
AHEAD = 300  # seconds, as an NTP step or a resumed VM would leave it
AHEAD_FOR = 3 * INTERVAL  # well inside the catch-up window: every tick of it can be caught up
assert AHEAD_FOR + 2 * INTERVAL < WINDOW


def faked_clock(offset_file: Path) -> dict[str, str]:
    return {
        "LD_PRELOAD": str(LIBFAKETIME),
        "FAKETIME_TIMESTAMP_FILE": str(offset_file),
        "FAKETIME_NO_CACHE": "1",  # read the offset on every call: the step is seen at once
        # Monotonic time steps with it (a harsher step than NTP's): with it left real, this
        # libfaketime fails Python's absolute-deadline sleeps with EINVAL.
    }


def early_refusals(db: ClusterDb, job: str, since) -> int:
    return int(
        db.value(
            "SELECT count(*) FROM jobs_jobrun WHERE job = %s AND outcome = 'skipped-early' AND started >= %s",
            job,
            since,
        )
    )


def test_a_beat_stepped_ahead_and_back_runs_every_tick_once_and_nothing_early(
    fast_jobs_tier, cluster_db, cluster_settings, tmp_path
):
    if not LIBFAKETIME.exists():
        missing("libfaketime is not installed (Debian package faketime; `make install` installs it)")
    cfg = cluster_settings
    offset = tmp_path / "clock-offset"
    offset.write_text("+0\n")
    beats = [f"beat-{server}" for server in ("app1", "app2", "app3")]
    cluster.stop(beats, cfg)
    try:
        # given: the one beat running with the right time
        start(cfg, "beat-app1", {**TEST_ENV, **faked_clock(offset)})
        time.sleep(2 * INTERVAL + 1)
        # when: its clock is stepped five minutes ahead, and back a few ticks later
        stepped = now()
        offset.write_text(f"+{AHEAD}\n")
        time.sleep(AHEAD_FOR)
        offset.write_text("+0\n")
        back = now()
        time.sleep(3 * INTERVAL + 2)
        end = now()
        # (read before any other beat is back: their catch-up would cover for a silent one)
        expected = ticks(stepped - timedelta(seconds=INTERVAL), end - timedelta(seconds=2 * INTERVAL))
        rows = {job: cluster_db.runs(job, expected[0], expected[-1]) for job in JOBS}
    finally:
        cluster.stop(["beat-app1"], cfg)
        for beat in beats:
            start(cfg, beat, TEST_ENV)

    # then: every tick from before the step to after the step back ran exactly once, caught up
    # or on time, and none started before its tick; the ahead beat's sends were refused as early
    for job in JOBS:
        succeeded = [row for row in rows[job] if row["outcome"] == "success" and not row["superseded"]]
        assert sorted(row["tick"] for row in succeeded) == expected, (
            job,
            [(row["tick"], row["outcome"]) for row in rows[job]],
        )
        assert [row for row in succeeded if row["started"] < row["tick"]] == [], f"{job}: ran early"
        assert early_refusals(cluster_db, job, stepped) > 0, f"{job}: the beat was never ahead"
        assert [row for row in succeeded if row["started"] >= back], f"{job}: nothing ran after the step back"
