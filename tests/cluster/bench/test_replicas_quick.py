import pytest

from deploy.local.cluster import REPO
from tests.cluster.bench import run_quick

pytestmark = pytest.mark.cluster


def test_the_replicas_benchmark_runs_in_quick_mode_and_writes_its_report(tmp_path):
    # given / when
    out = tmp_path / "replicas.md"
    run_quick([str(REPO / "bench" / "replicas" / "bench_replicas.py")], out)
    # then
    report = out.read_text()
    assert "| through the router |" in report
    assert "| `GET /replicas/debug/probes/<id>`, reads on the replica |" in report
    assert "| `GET /replicas/debug/probes/<id>`, reads on the primary |" in report
