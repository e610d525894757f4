"""An app server's /metrics sums every gunicorn worker and passes promtool's lint."""

import os
import signal
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from deploy.local import cluster
from tests.cluster.observability.conftest import sample_value, scrape
from tests.support import wait_until

pytestmark = pytest.mark.cluster

REQUESTS = 60
# PATCH to a path no view answers: no other test makes these, so the counter's move is ours.
LABELS = {"method": "PATCH", "view": "<unresolved>", "status": "404"}


def test_request_counter_sums_requests_served_by_every_worker(app_server, wait_for_log_lines):
    # given the server's count of unresolved PATCH requests
    before = sample_value(scrape(app_server.port), "app_http_requests_total", LABELS)
    run = uuid.uuid4().hex[:12]

    # when 60 such requests arrive 8 at a time, so both sync workers have to serve some
    def patch(index: int) -> int:
        response = requests.patch(
            f"http://127.0.0.1:{app_server.port}/observability-probe-{run}",
            headers={"X-Request-ID": f"obs-{run}-{index:03d}"},
            timeout=10,
        )
        return response.status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(patch, range(REQUESTS)))
    after = sample_value(scrape(app_server.port), "app_http_requests_total", LABELS)

    # then more than one worker served them (their log lines name the process)
    lines = wait_for_log_lines(app_server.log, f"obs-{run}-", REQUESTS)
    assert statuses == [404] * REQUESTS
    assert len(lines) == REQUESTS
    assert len({line["pid"] for line in lines}) >= 2
    # and the one scrape counts every one of them, whichever worker served it
    assert after - before == REQUESTS


def test_live_metrics_pass_promtool_check_metrics(app_server):
    # given a server that has served a request that queried the database (a failed login)
    requests.post(
        f"http://127.0.0.1:{app_server.port}/auth/login",
        json={"username": "nobody", "password": "x" * 12},
        timeout=10,
    )
    # when its exposition is linted
    text = scrape(app_server.port)
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=text.encode(), capture_output=True, check=False
    )
    # then promtool has no complaint, and the request and database metrics are there
    assert result.returncode == 0, result.stdout + result.stderr
    assert "app_http_requests_total" in text
    assert 'django_db_execute_total{alias="default",vendor="postgresql"}' in text


def _worker_pids(master: int) -> set[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return {int(pid) for pid in children}


def test_a_killed_workers_counts_stay_in_the_servers_sum(cluster_settings, app_server):
    # given requests counted on a server whose workers all served some
    master = cluster.recorded_pid(cluster.services(cluster_settings)[app_server.name], cluster_settings)
    assert master is not None
    run = uuid.uuid4().hex[:12]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(
            pool.map(
                lambda i: requests.patch(
                    f"http://127.0.0.1:{app_server.port}/observability-{run}-{i}", timeout=10
                ),
                range(20),
            )
        )
    before = sample_value(scrape(app_server.port), "app_http_requests_total", LABELS)
    workers = _worker_pids(master)
    # when one worker is killed outright and gunicorn replaces it (child_exit marks it dead)
    victim = min(workers)
    os.kill(victim, signal.SIGKILL)  # the fault under test: a worker the cluster started dies
    # then the server has its full set of workers again and still counts the dead worker's requests
    wait_until(
        lambda: victim not in _worker_pids(master) and len(_worker_pids(master)) >= len(workers),
        timeout=20,
        interval=0.2,
        message=lambda: f"gunicorn did not replace worker {victim}: workers {_worker_pids(master)}",
    )
    assert len(_worker_pids(master)) == len(workers)
    assert sample_value(scrape(app_server.port), "app_http_requests_total", LABELS) == before
