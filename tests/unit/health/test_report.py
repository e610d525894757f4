"""The IETF health-check response format and how check results add up to a verdict."""

import pytest

from health.exceptions import Status
from health.report import CheckResult, Observation, Report

pytestmark = pytest.mark.unit


def test_a_non_critical_failure_only_warns_and_a_critical_one_fails():
    # given
    replica_down = CheckResult("database:replicationLag", Status.FAIL, component_id="replica", critical=False)
    primary_up = CheckResult("database:responseTime", Status.PASS, Observation(1.2, "ms"), "primary")
    primary_down = CheckResult("database:responseTime", Status.FAIL, component_id="primary")

    # when
    degraded = Report(results=[primary_up, replica_down])
    broken = Report(results=[primary_down, replica_down])

    # then
    assert (degraded.status, degraded.http_status) == (Status.WARN, 200)
    assert (broken.status, broken.http_status) == (Status.FAIL, 503)
    assert (Report().status, Report().http_status) == (Status.PASS, 200)


def test_checks_are_grouped_by_component_and_measurement():
    # given
    nodes = [
        CheckResult("lock-redis:responseTime", Status.PASS, Observation(0.4, "ms"), "node-1"),
        CheckResult(
            "lock-redis:responseTime", Status.FAIL, None, "node-2", output="timed out", critical=False
        ),
    ]

    # when
    body = Report(results=nodes, service_id="app1", description="ready").as_json()

    # then
    assert body["status"] == "warn"
    assert body["serviceId"] == "app1"
    first, second = body["checks"]["lock-redis:responseTime"]
    assert first["componentId"] == "node-1"
    assert first["observedValue"] == 0.4
    assert first["observedUnit"] == "ms"
    assert first["time"].endswith("Z")
    assert second["status"] == "fail"
    assert second["output"] == "timed out"
    assert "observedValue" not in second
