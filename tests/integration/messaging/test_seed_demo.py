"""``seed_demo`` fills the database in bulk, shows progress, and refuses bad arguments in one line."""

import io
import os

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.db.models import F

from messaging import seeding
from messaging.models import Church, Contact, Message, PhoneLink, StaffMember
from tests.support import manage

pytestmark = pytest.mark.integration


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
    assert "seed_demo: messages 50/50 (100 %)" in out.getvalue()  # progress lines on stdout


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
    result = manage(
        "seed_demo", *arguments, env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    )
    # then
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stdout == ""


def test_copy_path_writes_consistent_rows_and_advances_the_sequences(db, monkeypatch):
    # given: rows that exist already, so the new ids must come after them; small COPY batches
    monkeypatch.setattr(seeding, "COPY_BATCH_SIZE", 20)
    call_command("seed_demo", "--churches", "2", "--contacts", "3", "--messages", "4", stdout=io.StringIO())
    out = io.StringIO()
    # when: more contacts than churches do not divide evenly, more messages than one church holds
    call_command("seed_demo", "--churches", "7", "--contacts", "45", "--messages", "230", stdout=out)
    # then
    assert Church.objects.count() == 9
    assert Contact.objects.count() == 48
    assert Message.objects.count() == 234
    new_churches = Church.objects.order_by("id")[2:]
    # contacts spread round-robin: 45 over 7 churches is 7 or 6 each, every one with its church
    assert [church.contacts.count() for church in new_churches] == [7, 7, 7, 6, 6, 6, 6]
    # every message's contact belongs to the message's church
    assert not Message.objects.exclude(contact__church=F("church")).exists()
    assert Message.objects.filter(church__in=new_churches).count() == 230
    assert "seed_demo: contacts 40/45 (88 %)" in out.getvalue()  # one line per batch
    assert "seed_demo: messages 230/230 (100 %)" in out.getvalue()
    # the id sequences are past the copied rows: inserts through the ORM do not collide
    church = new_churches[0]
    contact = Contact.objects.create(church=church, phone="+12025550123", name="After the seed")
    message = Message.objects.create(church=church, contact=contact, direction="outbound", body="hello")
    assert contact.id > max(Contact.objects.exclude(id=contact.id).values_list("id", flat=True))
    assert message.id > max(Message.objects.exclude(id=message.id).values_list("id", flat=True))
