"""The record_* functions move the project's metrics in prometheus-client's multiprocess files,
and one server's /metrics sums every process that wrote them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from config.observability import ServerCollector
from tests.programs import require_program
from tests.support import REPO

pytestmark = pytest.mark.unit

RECORD_EVERYTHING = """
import django
django.setup()
from config import metrics
metrics.record_lock_acquisition(lock="job:demo", outcome="acquired", seconds=0.002)
metrics.record_lock_acquisition(lock="job:demo", outcome="contended", seconds=0.001)
metrics.record_lock_release(lock="job:demo", held_seconds=1.5)
metrics.record_lock_lost(lock="job:demo")
metrics.record_job_run(
    job="demo", outcome="success", seconds=0.4, start_delay_seconds=0.2, interval_seconds=60
)
metrics.record_job_run(job="demo", outcome="failed", seconds=0.1)
metrics.record_replica_lag(replica="replica", seconds=0.003)
metrics.record_read_routed(alias="replica")
metrics.record_health_check(check="database", ok=True, seconds=0.004)
metrics.record_readiness(is_ready=True)
metrics.record_request(method="GET", view="demo", status=200, seconds=0.01)
"""


def _record_in_a_process(folder: Path, server: str) -> None:
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "APP_SERVER_NAME": server,
    }
    subprocess.run([sys.executable, "-c", RECORD_EVERYTHING], cwd=REPO, env=env, check=True, timeout=60)


def _samples(folders: list[Path]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    ServerCollector(registry, folders)
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_counters_from_processes_in_two_folders_are_summed(tmp_path):
    # given two processes of one server (say a gunicorn worker and the Celery worker), each in
    # its own process-group folder, recording the same events
    gunicorn, worker = tmp_path / "gunicorn", tmp_path / "worker"
    gunicorn.mkdir()
    worker.mkdir()
    _record_in_a_process(gunicorn, "app1")
    _record_in_a_process(worker, "app1")
    # when the server's collector reads both folders
    samples = _samples([gunicorn, worker])
    # then counters and histogram counts are the sums of both processes
    assert samples[("app_lock_acquisitions_total", (("lock", "job:demo"), ("outcome", "acquired")))] == 2
    assert samples[("app_lock_acquisitions_total", (("lock", "job:demo"), ("outcome", "contended")))] == 2
    assert samples[("app_locks_lost_total", (("lock", "job:demo"),))] == 2
    assert samples[("app_lock_hold_seconds_count", (("lock", "job:demo"),))] == 2
    assert samples[("app_job_runs_total", (("job", "demo"), ("outcome", "success")))] == 2
    assert samples[("app_job_runs_total", (("job", "demo"), ("outcome", "failed")))] == 2
    assert samples[("app_job_duration_seconds_count", (("job", "demo"),))] == 4  # two runs each
    assert samples[("app_job_start_delay_seconds_count", (("job", "demo"),))] == 2
    assert samples[("app_db_reads_routed_total", (("alias", "replica"),))] == 2
    assert samples[("app_http_requests_total", (("method", "GET"), ("status", "200"), ("view", "demo")))] == 2
    # and gauges combine by their mode: the newest reading, the latest timestamp, not a sum
    assert samples[("app_replica_lag_seconds", (("replica", "replica"),))] == pytest.approx(0.003)
    assert samples[("app_replica_up", (("replica", "replica"),))] == 1
    assert samples[("app_health_check_status", (("check", "database"),))] == 1
    assert samples[("app_ready", (("server", "app1"),))] == 1
    assert samples[("app_job_interval_seconds", (("job", "demo"),))] == 60
    assert samples[("app_job_last_success_timestamp_seconds", (("job", "demo"),))] > 1.7e9


def test_an_unreachable_replica_reads_as_down_and_keeps_its_last_lag(tmp_path):
    # given a process that measured the replica, then could not reach it
    script = (
        "from config import metrics\n"
        "metrics.record_replica_lag(replica='replica', seconds=0.05)\n"
        "metrics.record_replica_lag(replica='replica', seconds=None, reachable=False)\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, check=True, timeout=60)
    # when the folder is collected
    samples = _samples([tmp_path])
    # then the replica is down and the lag is the last one measured
    assert samples[("app_replica_up", (("replica", "replica"),))] == 0
    assert samples[("app_replica_lag_seconds", (("replica", "replica"),))] == pytest.approx(0.05)


def test_exposition_passes_promtool_check_metrics(tmp_path):
    # given every project metric recorded once in a process
    _record_in_a_process(tmp_path, "app1")
    # when the collected exposition is linted by promtool
    registry = CollectorRegistry()
    ServerCollector(registry, [tmp_path])
    result = subprocess.run(
        [require_program("promtool", "prometheus"), "check", "metrics"],
        input=generate_latest(registry),
        capture_output=True,
        check=False,
    )
    # then it has no complaints
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout + result.stderr == b""
