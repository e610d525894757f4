"""The Celery worker and beat touch their liveness file from their own loop (config/liveness.py)
and serve their metrics on a port of their own where one is set (config/process_metrics.py)."""

import os
import subprocess
import sys
import time

import pytest
import requests

from deploy.local.cluster import REPO
from deploy.local.host import free_port, stop_process

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
    port = free_port()
    (tmp_path / "metrics").mkdir()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "CELERY_LIVENESS_FILE": str(liveness),
        "CELERY_METRICS_PORT": str(port),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
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
        # and its metrics port answers in Prometheus' text format
        scrape = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert scrape.status_code == 200
        assert scrape.headers["Content-Type"].startswith("text/plain")
        # then its loop keeps touching it
        deadline = time.monotonic() + 30
        while liveness.stat().st_mtime == first:
            assert time.monotonic() < deadline, "the liveness file was not touched again within 30 s"
            time.sleep(0.5)
    finally:
        stop_process(child)
