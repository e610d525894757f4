"""The load test report's scale-out section: the table scaleout.py writes, plus its plot."""

from types import SimpleNamespace

import pytest

from bench import report

pytestmark = pytest.mark.unit


def test_the_scaleout_section_shows_speedup_and_efficiency_and_draws_the_plot(tmp_path):
    # given a measured scale-out over three capped servers
    scale = {
        "how": "each server capped at 0.25 core",
        "rps": {"1": 50.0, "2": 95.0, "3": 140.0},
        "p99": {"1": 100.0, "2": 120.0, "3": 130.0},
        "errors": {"1": 0, "2": 0, "3": 2},
        "quota_used": {"1": 0.98, "2": 0.97, "3": 0.91},
    }
    run = SimpleNamespace(facts={"scaleout": scale}, plan=SimpleNamespace(quick=True))
    # when the report writes the section
    lines = report._scaleout_section(run, tmp_path)  # type: ignore[arg-type]  # only facts and plan are read
    # then each row has the speed-up against one server and the efficiency, and the plot exists
    assert lines[0] == "## Scale-out with CPU-capped servers"
    assert "each server capped at 0.25 core" in lines
    assert "| 3 | 140 | 2.80x | 0.93 | 91% | - | 130.0 | 2 |" in lines
    assert (tmp_path / report.SCALEOUT_PNG).stat().st_size > 0


def test_a_skipped_scaleout_says_why():
    run = SimpleNamespace(facts={"scaleout": {"skipped": "no writable cgroup cpu controller"}}, plan=None)
    assert "Skipped: no writable cgroup cpu controller" in report._scaleout_section(run, None)  # type: ignore[arg-type]
