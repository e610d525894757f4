"""The availability run's short variant (``python -m bench.availability --quick``): ~75 s of
traffic through the edge with two components killed and restored. Its numbers are not the
10-minute run's goal; the test checks that the run measured each fault, wrote its section, plot
and figures, and that the month's availability is computed from the measured outages."""

import json

import pytest

from bench.availability import MARKERS, PLOT_PNG, QUICK_FAULTS, monthly_availability
from bench.faults import FAULTS
from tests.cluster.bench import run_quick

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]


def test_quick_availability_run_kills_two_components_and_reports_the_month(tmp_path, exclusive_app_servers):
    # given the running cluster / when the short availability run writes into a temporary folder
    result = run_quick(["-m", "bench.availability"], tmp_path, timeout=480)
    # then it killed and restored each of its components under load
    figures = json.loads((tmp_path / "availability.json").read_text())
    assert [fault["name"] for fault in figures["faults"]] == list(QUICK_FAULTS)
    for fault in figures["faults"]:
        assert fault["killed"] and fault["error"] == "", fault
        assert 0 < fault["at"] < fault["restored_at"]
        assert fault["reads_out"] >= 0 and fault["writes_out"] >= 0
    assert figures["reads"] > 0 and figures["writes"] > 0
    assert figures["rate"] == pytest.approx(figures["capacity"] / 2)
    # and the month's availability is the one the measured outages give
    downtimes = [max(fault["reads_out"], fault["writes_out"]) for fault in figures["faults"]]
    assert figures["availability_percent"] == pytest.approx(monthly_availability(downtimes))
    strict = [max(down, fault["stalled"]) for down, fault in zip(downtimes, figures["faults"], strict=True)]
    assert figures["availability_without_stalls_percent"] == pytest.approx(monthly_availability(strict))
    # and no acknowledged write was lost or sent twice
    delivery = figures["delivery"]
    assert delivery["acknowledged"] > 0
    assert delivery["missing"] == [] and delivery["duplicated"] == []
    # and the report has its section, one row per fault, the figure and the plot
    report = (tmp_path / "report.md").read_text()
    assert MARKERS[0] in report and MARKERS[1] in report
    assert "QUICK MODE" in report
    assert f"**{figures['availability_percent']:.5f} %** available" in report
    for name in QUICK_FAULTS:
        assert sum(line.startswith(f"| {FAULTS[name].what} |") for line in report.splitlines()) == 1, name
    assert (tmp_path / PLOT_PNG).stat().st_size > 10_000
    assert "wrote" in result.stdout
