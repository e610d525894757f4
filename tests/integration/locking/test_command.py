"""``manage.py locks list`` and ``locks release``."""

import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import call_command

from config.databases import PRIMARY_DB_ALIAS
from locking.models import LockGrant
from locking.selectors import is_job_lock_held
from tests.support import REPO, manage

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


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
    result = manage("locks", "release", lock_name, "--yes", "--reason", "stuck", env=child_env)
    # then
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"CommandError: no lock named {lock_name!r} is held"]


def test_release_asks_first_and_keeps_the_lock_on_no(child_env, held):
    # when
    result = manage("locks", "release", held.name, "--reason", "stuck", stdin="n\n", env=child_env)
    # then
    assert result.returncode == 0
    assert "[y/N]" in result.stdout
    assert "Not released." in result.stdout
    assert is_job_lock_held(held.name)


def test_release_with_yes_force_releases_and_records_the_operator(child_env, held):
    # when
    result = manage(
        "locks", "release", held.name, "--yes", "--by", "oncall-bob", "--reason", "holder hung", env=child_env
    )
    # then
    assert result.returncode == 0, result.stderr
    assert not is_job_lock_held(held.name)
    grant = LockGrant.objects.using(PRIMARY_DB_ALIAS).get(owner=held.owner)
    assert grant.outcome == LockGrant.Outcome.FORCE_RELEASED
    assert grant.force_released_by == "oncall-bob"
    assert grant.force_release_reason == "holder hung"


def test_release_without_a_reason_is_refused_and_keeps_the_lock(child_env, held):
    # when
    result = manage("locks", "release", held.name, "--yes", env=child_env)
    # then
    assert result.returncode == 2
    assert "--reason" in result.stderr
    assert is_job_lock_held(held.name)


def test_the_default_operator_works_for_a_uid_without_a_passwd_entry(child_env, held, tmp_path):
    # given a process whose uid has no passwd entry and no LOGNAME/USER (a container's runAsUser)
    env = {k: v for k, v in child_env.items() if k not in {"LOGNAME", "USER", "LNAME", "USERNAME"}}
    wrapper = tmp_path / "nobody_uid.py"
    wrapper.write_text(
        "import os, runpy, sys\n"
        "os.setgid(64999); os.setuid(64999)\n"
        "sys.argv = sys.argv[1:]\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n"
    )

    # when an operator lists and releases without --by
    def locks(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(wrapper), str(REPO / "manage.py"), "locks", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd="/",
        )

    listing = locks("list")
    released = locks("release", held.name, "--yes", "--reason", "test")
    # then both work and the audit names the uid
    assert listing.returncode == 0, listing.stderr
    assert released.returncode == 0, released.stderr
    grant = LockGrant.objects.using(PRIMARY_DB_ALIAS).get(owner=held.owner)
    assert grant.force_released_by == "uid-64999"
