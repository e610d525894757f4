"""A phone link records each linking attempt, only from the state its reader saw."""

import pytest

from messaging.inbound import services
from messaging.models import PhoneLink

pytestmark = pytest.mark.integration


def test_a_phone_link_records_each_attempt(church):
    # given
    link = services.phone_link_create(church=church, phone="(646) 555-0199")
    # when: a refused attempt, then (from what was read after it) a successful one
    refused = services.phone_link_record_attempt(phone_link=link, error="carrier refused", max_attempts=3)
    link.refresh_from_db()
    after_refusal = (link.state, link.attempts, link.last_error)
    linked = services.phone_link_record_attempt(phone_link=link, error=None, max_attempts=3)
    # then
    link.refresh_from_db()
    assert refused == PhoneLink.State.PENDING
    assert after_refusal == (PhoneLink.State.PENDING, 1, "carrier refused")
    assert linked == PhoneLink.State.LINKED
    assert (link.phone, link.state, link.attempts, link.last_error) == ("+16465550199", "linked", 2, "")
    assert link.last_attempt_at is not None


def test_a_phone_link_fails_at_its_last_attempt_and_a_stale_record_changes_nothing(church):
    # given: a link read before an attempt was recorded
    link = services.phone_link_create(church=church, phone="(646) 555-0198")
    stale = PhoneLink.objects.get(pk=link.pk)
    # when: its only allowed attempt fails, then a stale reader records another
    failed = services.phone_link_record_attempt(phone_link=link, error="no such number", max_attempts=1)
    again = services.phone_link_record_attempt(phone_link=stale, error=None, max_attempts=1)
    # then
    link.refresh_from_db()
    assert (failed, again) == (PhoneLink.State.FAILED, None)
    assert (link.state, link.attempts, link.last_error) == (PhoneLink.State.FAILED, 1, "no such number")
