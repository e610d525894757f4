"""The alert rules and scrape configs in deploy/monitoring pass promtool, rules and unit tests."""

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.programs import require_program

pytestmark = pytest.mark.unit

MONITORING = Path(__file__).resolve().parents[3] / "deploy" / "monitoring"

REQUIRED_ALERTS = {
    "LockQuorumLost",
    "ReplicaLagHigh",
    "ReplicaDown",
    "LockLost",
    "JobFailing",
    "JobNotRun",
    "HighServerErrorRate",
    "ReadinessFailing",
    "PgBouncerPoolSaturated",
    "EdgeAddressNotHeldOnce",
    "EdgeRedundancyLost",
    "EdgeFailover",
}


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = require_program("promtool", "prometheus")
    return subprocess.run([promtool, *args], cwd=MONITORING, capture_output=True, text=True, check=False)


def test_alert_rules_pass_promtool_check():
    # given the rules file / when promtool checks it
    result = _promtool("check", "rules", "alerts.yml")
    # then it is valid
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_pass_their_promtool_unit_tests():
    # given series that should and should not fire each alert / when promtool replays them
    result = _promtool("test", "rules", "alerts.test.yml")
    # then every expectation holds
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_every_required_alert_exists_and_has_a_unit_test():
    # given the rules and their tests
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    tests = yaml.safe_load((MONITORING / "alerts.test.yml").read_text())
    # when the alert names are collected
    defined = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    tested = {case["alertname"] for test in tests["tests"] for case in test["alert_rule_test"]}
    # then the required ones are there, and none is untested
    assert defined >= REQUIRED_ALERTS
    assert defined == tested


def test_local_scrape_config_passes_promtool_and_targets_every_app_server():
    # given the local cluster's scrape config / when promtool checks it
    result = _promtool("check", "config", "prometheus.local.yml")
    config = yaml.safe_load((MONITORING / "prometheus.local.yml").read_text())
    # then it is valid and scrapes the three app servers
    assert result.returncode == 0, result.stdout + result.stderr
    app = next(job for job in config["scrape_configs"] if job["job_name"] == "app")
    assert app["static_configs"][0]["targets"] == ["127.0.0.1:28001", "127.0.0.1:28002", "127.0.0.1:28003"]


def test_kubernetes_scrape_config_keeps_web_pods_and_loads_the_rules():
    # given the Kubernetes scrape config (Debian's promtool lacks Kubernetes discovery)
    config = yaml.safe_load((MONITORING / "prometheus.k8s.yml").read_text())
    # when its app job is read
    app = next(job for job in config["scrape_configs"] if job["job_name"] == "app")
    keeps = {
        (tuple(r["source_labels"]), r["regex"]) for r in app["relabel_configs"] if r.get("action") == "keep"
    }
    # then it discovers pods, keeps the web component's http port and loads alerts.yml
    assert app["kubernetes_sd_configs"] == [{"role": "pod"}]
    assert (("__meta_kubernetes_pod_label_app_kubernetes_io_component",), "web") in keeps
    assert (("__meta_kubernetes_pod_container_port_name",), "http") in keeps
    assert config["rule_files"] == ["alerts.yml"]
    live = next(job for job in config["scrape_configs"] if job["job_name"] == "live")
    live_keeps = {
        (tuple(r["source_labels"]), r["regex"]) for r in live["relabel_configs"] if r.get("action") == "keep"
    }
    assert (("__meta_kubernetes_pod_label_app_kubernetes_io_component",), "live") in live_keeps
    assert live["authorization"] == app["authorization"]
    # and the worker's and beat's metrics ports, where the job metrics are recorded
    jobs = next(job for job in config["scrape_configs"] if job["job_name"] == "jobs")
    jobs_keeps = {
        (tuple(r["source_labels"]), r["regex"]) for r in jobs["relabel_configs"] if r.get("action") == "keep"
    }
    assert (("__meta_kubernetes_pod_label_app_kubernetes_io_component",), "worker|beat") in jobs_keeps
    assert (("__meta_kubernetes_pod_container_port_name",), "metrics") in jobs_keeps
    # the app's `job` label (the job's name) survives the scrape: the alerts group by it
    assert app["honor_labels"] is True and jobs["honor_labels"] is True


def test_grafana_dashboard_queries_only_metrics_that_exist():
    # given the dashboard and the metric names the project and its exporters define
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    source = (Path(__file__).resolve().parents[3] / "config" / "metrics.py").read_text()
    external = ("django_db_", "pgbouncer_pools_")
    # when every query's app_* metric names are collected
    names = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b(app_[a-z_]+?)(?:_bucket)?\b(?=[\[{( ])", target["expr"])
    }
    # then each is defined in config/metrics.py, and the panels cover the brief's list
    assert names
    assert all(f'"{name}"' in source for name in names), names
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    assert all(prefix in exprs for prefix in external)


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", page.read_text(), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_every_alert_names_a_runbook_page_and_section_that_exist():
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    runbooks = MONITORING.parents[1] / "docs" / "runbooks"
    for group in rules["groups"]:
        for rule in group["rules"]:
            url = rule["annotations"].get("runbook_url", "")
            assert "/docs/runbooks/" in url, rule["alert"]
            page, _, anchor = url.split("/docs/runbooks/", 1)[1].partition("#")
            assert (runbooks / page).is_file(), (rule["alert"], page)
            assert not anchor or anchor in _anchors(runbooks / page), (rule["alert"], anchor)
