"""``manage.py health``: the same checks as the endpoints, one aligned line each, exit codes."""

import os
from io import StringIO

import pytest
from django.core.management import call_command

from tests.support import manage

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def _status_column(lines: list[str]) -> set[int]:
    return {line.index(status) for line in lines for status in (" pass", " warn", " fail") if status in line}


def test_ready_prints_one_aligned_line_per_check_and_returns_normally():
    # given
    out = StringIO()

    # when
    call_command("health", "ready", stdout=out)

    # then
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("database:responseTime primary")
    assert any(line.startswith("lock-redis:quorum") for line in lines)
    assert lines[-1].split()[0] == "overall"
    assert lines[-1].split()[1] in ("pass", "warn")  # warn: a lock node another test paused
    assert len(_status_column(lines)) == 1


def test_without_a_lock_quorum_web_readiness_warns_and_the_jobs_probe_exits_1(settings, closed_port):
    # given: two of three lock nodes where nothing listens
    settings.LOCK_REDIS_URLS = [
        settings.LOCK_REDIS_URLS[0],
        f"redis://127.0.0.1:{closed_port}/0",
        f"redis://127.0.0.1:{closed_port}/1",
    ]
    ready, jobs = StringIO(), StringIO()

    # when a web pod's readiness and a worker's own probe run
    call_command("health", "ready", stdout=ready)  # returns: exit 0
    with pytest.raises(SystemExit) as exit_:
        call_command("health", "jobs", stdout=jobs)

    # then web stays in its Service (requests take no lock); the worker is the one that fails
    quorum = next(line for line in ready.getvalue().splitlines() if line.startswith("lock-redis:quorum"))
    assert quorum.split()[1] == "fail"
    assert ready.getvalue().splitlines()[-1].split() == ["overall", "warn"]
    assert exit_.value.code == 1
    assert "lock-redis:quorum" in jobs.getvalue()
    assert jobs.getvalue().splitlines()[-1].split() == ["overall", "fail"]


def test_live_checks_no_dependency():
    out = StringIO()
    call_command("health", "live", stdout=out)
    assert out.getvalue().splitlines()[-1].split() == ["overall", "pass"]


def test_a_bad_argument_exits_non_zero_with_one_line():
    # when
    result = manage(
        "health", "everything", env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    )

    # then
    assert result.returncode != 0
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert "live, ready, detailed" in result.stderr
