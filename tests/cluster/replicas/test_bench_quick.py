import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[3]


def test_the_replicas_benchmark_runs_in_quick_mode_and_writes_its_report(tmp_path):
    # given / when
    out = tmp_path / "replicas.md"
    script = REPO / "bench" / "replicas" / "bench_replicas.py"
    completed = subprocess.run(
        [sys.executable, str(script), "--quick", "--out", str(out)],
        capture_output=True, text=True, timeout=180, cwd=REPO,
    )  # fmt: skip
    # then
    assert completed.returncode == 0, completed.stderr[-2000:]
    report = out.read_text()
    assert "| through the router |" in report
    assert "| `GET /replicas/debug/probes/<id>`, reads on the replica |" in report
    assert "| `GET /replicas/debug/probes/<id>`, reads on the primary |" in report
