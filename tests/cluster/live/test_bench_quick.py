"""The live-update benchmark runs in its quick mode and reports what it measured."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[3]


def test_the_live_benchmark_runs_in_quick_mode_and_writes_its_report(tmp_path):
    # when
    out = tmp_path / "live.md"
    completed = subprocess.run(
        [sys.executable, "-m", "bench.live.bench_live", "--quick", "--out", str(out)],
        capture_output=True, text=True, timeout=180, cwd=REPO,
    )  # fmt: skip
    # then: every connection opened, every event reached every listener
    assert completed.returncode == 0, completed.stderr[-2000:]
    report = out.read_text()
    assert "| idle connections open | 60 of 60 " in report
    assert "| server memory per idle connection |" in report
    assert "| webhook → client p50 / p99 |" in report
    assert "| events lost (a listener never got one) | 0 |" in report
