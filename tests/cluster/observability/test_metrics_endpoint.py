"""An app server's /metrics sums every gunicorn worker and passes promtool's lint."""

import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.cluster.observability.conftest import sample_value, scrape

pytestmark = pytest.mark.cluster

REQUESTS = 60
# PATCH to a path no view answers: no other test makes these, so the counter's move is ours.
LABELS = {"method": "PATCH", "view": "<unresolved>", "status": "404"}


def test_request_counter_sums_requests_served_by_every_worker(cluster_settings, app_port, wait_for_log_lines):
    # given the server's count of unresolved PATCH requests
    before = sample_value(scrape(app_port), "app_http_requests_total", LABELS)
    run = uuid.uuid4().hex[:12]

    # when 60 such requests arrive 8 at a time, so both sync workers have to serve some
    def patch(index: int) -> int:
        response = requests.patch(
            f"http://127.0.0.1:{app_port}/observability-probe-{run}",
            headers={"X-Request-ID": f"obs-{run}-{index:03d}"},
            timeout=10,
        )
        return response.status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(patch, range(REQUESTS)))
    after = sample_value(scrape(app_port), "app_http_requests_total", LABELS)

    # then more than one worker served them (their log lines name the process)
    log = cluster_settings.log_dir / f"{cluster_settings.server_names[0]}.log"
    lines = wait_for_log_lines(log, f"obs-{run}-", REQUESTS)
    assert statuses == [404] * REQUESTS
    assert len(lines) == REQUESTS
    assert len({line["pid"] for line in lines}) >= 2
    # and the one scrape counts every one of them, whichever worker served it
    assert after - before == REQUESTS


def test_live_metrics_pass_promtool_check_metrics(app_port):
    # given a server that has served requests and queries
    requests.get(f"http://127.0.0.1:{app_port}/api/messages", timeout=10)
    # when its exposition is linted
    text = scrape(app_port)
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=text.encode(), capture_output=True, check=False
    )
    # then promtool has no complaint, and the request and database metrics are there
    assert result.returncode == 0, result.stdout + result.stderr
    assert "app_http_requests_total" in text
    assert "django_db_execute_total" in text or "django_db_new_connections_total" in text
