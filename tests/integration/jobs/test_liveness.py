"""The Celery worker and beat touch their liveness file from their own loop (config/liveness.py)."""

import os
import signal
import subprocess
import sys
import time

import pytest

from deploy.local.cluster import REPO

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "process",
    [
        [
            "worker",
            "--pool",
            "solo",
            "--queues",
            "liveness-test-only",
            "--without-gossip",
            "--without-mingle",
        ],
        ["beat", "--schedule", "{tmp}/beat-schedule"],
    ],
    ids=["worker", "beat"],
)
def test_the_process_touches_its_liveness_file_while_it_runs(tmp_path, process):
    # given a worker or beat told where its liveness file is (test settings: the test broker db)
    liveness = tmp_path / "alive"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "CELERY_LIVENESS_FILE": str(liveness),
    }
    args = [arg.format(tmp=tmp_path) for arg in process]
    child = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", *args, "--loglevel", "WARNING"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # when it has started
        deadline = time.monotonic() + 60
        while not liveness.exists():
            assert child.poll() is None, child.stderr.read() if child.stderr else ""
            assert time.monotonic() < deadline, "no liveness file within 60 s"
            time.sleep(0.5)
        first = liveness.stat().st_mtime
        # then its loop keeps touching it
        deadline = time.monotonic() + 30
        while liveness.stat().st_mtime == first:
            assert time.monotonic() < deadline, "the liveness file was not touched again within 30 s"
            time.sleep(0.5)
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
