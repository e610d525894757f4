"""``seed_demo`` fills the database in bulk, shows progress, and refuses bad arguments in one line."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.db.models import F

from messaging.models import Church, Contact, Message, PhoneLink, StaffMember

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]


def test_seed_demo_creates_the_totals_asked_for_and_the_demo_user(db, settings):
    # given
    out = io.StringIO()
    # when
    call_command("seed_demo", "--churches", "3", "--contacts", "20", "--messages", "50", stdout=out)
    # then
    assert Church.objects.count() == 3
    assert Contact.objects.count() == 20
    assert Message.objects.count() == 50
    assert PhoneLink.objects.filter(state=PhoneLink.State.LINKED).count() == 3
    # every message belongs to a contact of its own church
    assert not Message.objects.exclude(contact__church=F("church")).exists()
    user = authenticate(username=settings.MESSAGING_DEMO_USERNAME, password=settings.MESSAGING_DEMO_PASSWORD)
    assert user is not None
    assert StaffMember.objects.get(user=user).church in Church.objects.all()
    assert "seeded 3 churches, 20 contacts, 50 messages" in out.getvalue()
    assert "seed_demo" in out.getvalue()  # the progress bar went to the command's stdout


def test_if_empty_does_nothing_when_churches_exist(db):
    # given
    call_command("seed_demo", "--churches", "1", "--contacts", "1", "--messages", "1", stdout=io.StringIO())
    out = io.StringIO()
    # when
    call_command("seed_demo", "--if-empty", stdout=out)
    # then
    assert Church.objects.count() == 1
    assert "nothing to do" in out.getvalue()


@pytest.mark.parametrize(
    "arguments", [["--churches", "-1"], ["--contacts", "many"], ["--bogus"], ["--churches", "0"]]
)
def test_bad_arguments_exit_non_zero_with_one_line(arguments):
    # when
    result = subprocess.run(
        [sys.executable, "manage.py", "seed_demo", *arguments],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"},
    )
    # then
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stdout == ""
