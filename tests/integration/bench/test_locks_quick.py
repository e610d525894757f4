"""The lock benchmark's quick mode still runs and writes its whole table (not a timing test)."""

import re

import pytest

from tests.support import run_script

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

EXPECTED_ROWS = [
    ("raw SET NX PX + DEL", "1"),
    ("python-redis-lock", "1"),
    ("pottery Redlock", "3"),
    ("this service, no audit", "1"),
    ("this service, no audit", "3"),
    ("this service, audit+fence", "1"),
    ("this service, audit+fence", "3"),
]


def test_quick_mode_writes_a_table_with_every_row(child_env, tmp_path):
    # given
    out = tmp_path / "locks.md"
    env = {**child_env, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    # when
    result = run_script(
        "bench/locks/bench_locks.py",
        "--iterations",
        "20",
        "--warmup",
        "2",
        "--out",
        str(out),
        env=env,
        timeout=120,
    )
    # then
    assert result.returncode == 0, result.stderr
    table = out.read_text()
    rows = [
        line
        for line in table.splitlines()
        if line.startswith("| ") and not line.startswith("| implementation")
    ]
    cells = [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]
    # (a row may say how many steps a lock node paused by another test suite interrupted)
    assert [(re.sub(r" \(\d+ interrupted\)$", "", row[0]), row[1]) for row in cells] == EXPECTED_ROWS
    assert all(0 < float(row[2]) <= float(row[3]) for row in cells)
    assert "goal ≤ 0.50" in table
    assert table in result.stdout
