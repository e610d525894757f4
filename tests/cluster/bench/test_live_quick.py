"""The live-update benchmark runs in its quick mode and reports what it measured."""

import pytest

from tests.cluster.bench import run_quick

pytestmark = pytest.mark.cluster


def test_the_live_benchmark_runs_in_quick_mode_and_writes_its_report(tmp_path):
    # when
    out = tmp_path / "live.md"
    run_quick(["-m", "bench.live.bench_live"], out)
    # then: every connection opened, every event reached every listener
    report = out.read_text()
    assert "| idle connections open | 60 of 60 " in report
    assert "| server memory per idle connection |" in report
    assert "| webhook → client p50 / p99 |" in report
    assert "| events lost (a listener never got one) | 0 |" in report
