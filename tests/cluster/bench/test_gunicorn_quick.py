"""The gunicorn worker benchmark still runs end to end (quick mode), so its numbers can be remade."""

import re

import pytest

from bench.gunicorn import run

pytestmark = pytest.mark.cluster


def test_the_quick_benchmark_serves_every_request_and_writes_its_report(tmp_path):
    # given
    out = tmp_path / "gunicorn.md"
    # when
    assert run.main(["--quick", "--out", str(out)]) == 0
    # then: one row per worker class, each with requests served and no errors
    rows = [
        line
        for line in out.read_text().splitlines()
        if line.startswith("| sync") or line.startswith("| gthread")
    ]
    assert len(rows) == 2
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        requests_per_second, errors = float(cells[2].replace(",", "")), int(cells[7])
        assert requests_per_second > 0
        assert float(cells[6]) > 0  # CPU ms per request, read from /proc
        assert errors == 0
    assert re.search(r"Best \(geometric mean of req/s, no errors\): \*\*(sync|gthread)", out.read_text())
