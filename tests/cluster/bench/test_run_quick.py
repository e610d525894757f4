"""``make bench QUICK=1`` runs end to end, so the load test cannot rot between full runs.

Its numbers mean nothing (seconds per row, a busy machine); the test checks that every row,
the plots and the verification are produced, into a temporary folder, never over the committed
report. It restarts the last app server once under load, as the full run does.
"""

import pytest

from tests.cluster.bench import run_quick

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]  # the bench alone may take 4 minutes

TOOLS = ("wrk", "locust", "open loop")
SCENARIOS = [
    "NGINX return 200",
    "bare WSGI",
    "/health/live",
    "/health",
    "/health, right after 32",
    "message list",
    "message list, one server",
    "message list, right after 32",
    "mixed (Locust)",
    "realistic mix (Locust)",
    "open loop, 70 % of capacity",
    "message list, app3 restarts",
]


def test_quick_bench_writes_every_row_the_plots_and_the_verification(tmp_path):
    # given the running cluster / when the quick bench runs into a temporary folder
    result = run_quick(["-m", "bench.run"], tmp_path, timeout=240)
    # then it succeeded and showed its progress
    assert "1. baselines" in result.stdout and "wrote" in result.stdout
    # and the report has a measured row for every scenario at its concurrencies
    report = (tmp_path / "report.md").read_text()
    assert report.startswith("# Load test report — QUICK MODE")
    rows = [line for line in report.splitlines() if any(f" | {tool} | " in line for tool in TOOLS)]
    for scenario in SCENARIOS:
        assert any(row.startswith(f"| {scenario} | ") for row in rows), scenario
    assert "FAILED" not in report
    for goal in (
        "whole-machine CPU per message-list request ≤ 5 ms",
        "message list ÷ `/health/live` ≥ 0.35",
        "`/health` ÷ `/health/live` ≥ 0.90",
        "`/health` ≥ 0.8x bare WSGI",
        "message list p99 < 250 ms",
        "only 2xx and quick JSON 503s",
        "throughput back within 10 s",
        "open loop at 70 % of capacity: p99 from the scheduled time",
        "realistic mix ≤ 4.0 ms",
        "≤ 30 throughout",
    ):
        assert goal in report
    # and the profile of one message-list request, before and now
    assert "### Before the changes of issue 17" in report and "### Now (this run)" in report
    # and the two plots are PNG files
    for plot in ("throughput_vs_concurrency.png", "latency_percentiles.png"):
        assert (tmp_path / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # and the verification names each of the seed's seven criteria with a figure
    verification = (tmp_path / "phase2-verification.md").read_text()
    criteria = [line for line in verification.splitlines() if line[:4] in {f"| {n} " for n in range(1, 8)}]
    assert len(criteria) == 7
    # and nothing was written over the committed report
    assert str(tmp_path) in result.stdout
    assert "bench/report.md" not in result.stdout
