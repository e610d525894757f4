"""``manage.py locks list`` and ``locks release``."""

import subprocess
from io import StringIO

import pytest
from django.core.management import call_command

from locking.models import LockGrant
from locking.selectors import is_job_lock_held
from replicas import PRIMARY_DB_ALIAS
from tests.scripts import run_script

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def manage(child_env, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return run_script("manage.py", *args, env=child_env, stdin=stdin)


def test_list_prints_an_aligned_table_with_the_holder(held):
    # when
    out = StringIO()
    call_command("locks", "list", stdout=out)
    # then
    lines = out.getvalue().splitlines()
    assert lines[0].split() == [
        "NAME",
        "OWNER",
        "SERVER",
        "PID",
        "TOKEN",
        "ACQUIRED",
        "EXPIRES",
        "IN",
        "RENEWALS",
    ]
    row = next(line for line in lines if line.startswith(held.name + " "))
    assert held.owner in row
    assert f" {held.token} " in row
    assert row.index(held.owner) == lines[0].index("OWNER")


def test_release_of_an_unknown_name_says_so_in_one_line_and_exits_1(child_env, lock_name):
    # when
    result = manage(child_env, "locks", "release", lock_name, "--yes")
    # then
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"CommandError: no lock named {lock_name!r} is held"]


def test_release_asks_first_and_keeps_the_lock_on_no(child_env, held):
    # when
    result = manage(child_env, "locks", "release", held.name, stdin="n\n")
    # then
    assert result.returncode == 0
    assert "[y/N]" in result.stdout
    assert "Not released." in result.stdout
    assert is_job_lock_held(held.name)


def test_release_with_yes_force_releases_and_records_the_operator(child_env, held):
    # when
    result = manage(child_env, "locks", "release", held.name, "--yes", "--by", "oncall-bob")
    # then
    assert result.returncode == 0, result.stderr
    assert not is_job_lock_held(held.name)
    grant = LockGrant.objects.using(PRIMARY_DB_ALIAS).get(owner=held.owner)
    assert grant.outcome == LockGrant.Outcome.FORCE_RELEASED
    assert grant.force_released_by == "oncall-bob"
