"""``manage.py jobs``: list, history, run (through the lock and the ledger), pause and resume."""

from collections import Counter
from dataclasses import dataclass
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from config.databases import PRIMARY_DB_ALIAS
from jobs.context import Job
from jobs.models import JobPause, JobRun, Outcome
from jobs.registry import JOBS
from jobs.services import job_execute
from tests.support import manage

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@dataclass
class Registered:
    spec: Job
    name: str
    runs: Counter[str]


@pytest.fixture
def job(make_job, job_settings, monkeypatch):
    """A registered job with an hour-long tick (two calls in a test share one tick) that counts
    its runs."""
    job_settings.JOBS_TEST_INTERVAL_SECONDS = 3600.0
    job_settings.JOBS_CATCH_UP_WINDOW_SECONDS = 600.0
    runs: Counter[str] = Counter()

    def body(ctx):
        runs[ctx.tick.isoformat()] += 1

    spec = make_job(body)
    monkeypatch.setitem(JOBS, spec.name, spec)
    return Registered(spec=spec, name=spec.name, runs=runs)


def jobs(*args: str) -> str:
    out = StringIO()
    call_command("jobs", *args, stdout=out)
    return out.getvalue()


def ledger(name: str) -> list[tuple[str, str]]:
    rows = JobRun.objects.using(PRIMARY_DB_ALIAS).filter(job=name).order_by("id")
    return [(row.outcome, row.server) for row in rows]


def test_run_twice_for_one_tick_runs_it_once(job):
    # when an operator runs the job's current tick twice
    first = jobs("run", job.name, "--by", "alice")
    second = jobs("run", job.name, "--by", "alice")
    # then the body ran once; the second found the tick's ledger row and ran nothing
    assert sum(job.runs.values()) == 1
    assert "ran (success)" in first
    assert "already run, not run again (skipped-duplicate)" in second
    assert [outcome for outcome, _ in ledger(job.name)] == [Outcome.SUCCESS, Outcome.SKIPPED_DUPLICATE]
    assert JobRun.objects.using(PRIMARY_DB_ALIAS).get(job=job.name, outcome=Outcome.SUCCESS).task_id == (
        "manage.py jobs run (by alice)"
    )


def test_a_beat_delivery_after_a_manual_run_of_the_same_tick_runs_nothing(job):
    # given the tick was run by hand
    jobs("run", job.name)
    # when beat's delivery of the same tick arrives on a server
    report = job_execute(job=job.spec, task_id="beat")
    # then
    assert report.outcome == Outcome.SKIPPED_DUPLICATE
    assert sum(job.runs.values()) == 1


def test_a_paused_job_is_skipped_on_every_server_and_recorded(job, settings):
    # given
    said = jobs("pause", job.name, "--by", "alice", "--reason", "provider outage")
    # when each server's beat delivers the tick
    outcomes = []
    for server in ("app1", "app2", "app3"):
        settings.APP_SERVER_NAME = server
        outcomes.append(job_execute(job=job.spec, task_id=f"beat-{server}").outcome)
    # then nothing ran, and the ledger says why on each server
    assert "paused by alice" in said
    assert outcomes == [Outcome.SKIPPED_PAUSED] * 3
    assert job.runs == Counter()
    assert ledger(job.name) == [(Outcome.SKIPPED_PAUSED, server) for server in ("app1", "app2", "app3")]
    row = JobRun.objects.using(PRIMARY_DB_ALIAS).filter(job=job.name).first()
    assert row is not None and "paused by alice" in row.error and "provider outage" in row.error


def test_a_paused_job_cannot_be_run_by_hand_until_resumed(job):
    # given
    jobs("pause", job.name)
    # when / then
    with pytest.raises(CommandError, match=f"job '{job.name}' is paused .*: resume it first"):
        jobs("run", job.name)
    assert job.runs == Counter()
    # and after resuming it runs
    assert "resumed" in jobs("resume", job.name)
    assert "ran (success)" in jobs("run", job.name)
    assert sum(job.runs.values()) == 1
    assert not JobPause.objects.using(PRIMARY_DB_ALIAS).filter(job=job.name).exists()


def test_list_shows_interval_last_tick_outcome_next_tick_and_pause(job):
    # given one run and a pause
    jobs("run", job.name)
    jobs("pause", job.name, "--by", "bob")
    # when
    lines = jobs("list").splitlines()
    # then
    assert lines[0].split() == [
        "JOB",
        "INTERVAL",
        "LAST",
        "TICK",
        "LAST",
        "OUTCOME",
        "NEXT",
        "TICK",
        "PAUSED",
    ]
    row = next(line for line in lines if line.startswith(job.name + " "))
    assert "3600s" in row and "success" in row and "by bob at" in row
    assert any(line.startswith("recurring-messages ") for line in lines)  # the real jobs are listed


def test_history_shows_runs_and_skips_newest_first(job):
    jobs("run", job.name)
    jobs("run", job.name)
    lines = jobs("history", job.name).splitlines()
    assert lines[0].split()[:2] == ["TICK", "OUTCOME"]
    assert [line.split()[2] for line in lines[1:]] == ["skipped-duplicate", "success"]


@pytest.mark.django_db(transaction=True, databases=[PRIMARY_DB_ALIAS, "replica"])  # the admin's login reads
def test_the_admin_shows_paused_jobs(job, admin_client):
    jobs("pause", job.name, "--by", "carol", "--reason", "investigating")
    page = admin_client.get("/admin/jobs/jobpause/")
    assert page.status_code == 200
    assert job.name in page.content.decode() and "investigating" in page.content.decode()


@pytest.mark.parametrize("action", ["history", "run", "pause", "resume"])
def test_an_unknown_job_exits_1_with_one_line_naming_the_jobs(action, child_env):
    result = manage("jobs", action, "no-such-job", env=child_env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("CommandError: unknown job 'no-such-job'; the jobs are: ")
    assert "recurring-messages" in lines[0]
