"""Recurring occurrences go out once per contact; a schedule moves on only from what its run read."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, transaction

from messaging.models import Message, RecurringMessage
from messaging.recurring import services
from tests.integration.messaging.factories import (
    ContactFactory,
    ContactGroupFactory,
    MessageFactory,
    RecurringMessageFactory,
)

pytestmark = pytest.mark.integration

OCCURRENCE = datetime(2026, 3, 8, 13, 0, tzinfo=UTC)


def test_the_database_refuses_a_second_message_for_one_occurrence_and_contact(church):
    # given
    recurring = RecurringMessageFactory.create(church=church)
    contact = ContactFactory.create(church=church)
    MessageFactory.create(church=church, contact=contact, recurring_message=recurring, occurrence=OCCURRENCE)
    # when / then
    with pytest.raises(IntegrityError, match="message_once_per_occurrence_and_contact"), transaction.atomic():
        MessageFactory.create(
            church=church, contact=contact, recurring_message=recurring, occurrence=OCCURRENCE
        )


def test_an_occurrence_queues_one_message_per_opted_in_contact_and_a_rerun_adds_nothing(
    church, django_capture_on_commit_callbacks
):
    # given
    recurring = RecurringMessageFactory.create(church=church)
    subscribed = ContactFactory.create_batch(5, church=church)
    ContactFactory.create(church=church, opted_out=True)
    # when
    with django_capture_on_commit_callbacks() as callbacks:
        first = services.recurring_message_occurrence_create(
            recurring_message=recurring, occurrence=OCCURRENCE, batch_size=2
        )
    second = services.recurring_message_occurrence_create(recurring_message=recurring, occurrence=OCCURRENCE)
    # then
    assert (first.created, first.existing) == (5, 0)
    assert (second.created, second.existing) == (0, 5)
    sent_to = Message.objects.filter(recurring_message=recurring, occurrence=OCCURRENCE)
    assert sorted(sent_to.values_list("contact_id", flat=True)) == [c.id for c in subscribed]
    # everything the (test's) transaction queued is published once, after its commit
    [publish] = callbacks
    assert sorted(publish.__self__.message_ids) == sorted(sent_to.values_list("id", flat=True))


def test_an_occurrence_for_a_group_reaches_only_its_members(church):
    # given
    choir = ContactGroupFactory.create(church=church, name="choir")
    singer, _other = ContactFactory.create_batch(2, church=church)
    singer.groups.add(choir)
    recurring = RecurringMessageFactory.create(church=church, group=choir)
    # when
    result = services.recurring_message_occurrence_create(recurring_message=recurring, occurrence=OCCURRENCE)
    # then
    assert result.created == 1
    assert Message.objects.get(recurring_message=recurring).contact == singer


def test_advancing_a_recurring_message_sets_the_next_local_nine(church):
    # given: New York, daily at 09:00 local
    recurring = RecurringMessageFactory.create(church=church, cron="0 9 * * *")
    # when: the 8 March (first EDT day) occurrence was just sent
    moved = services.recurring_message_advance(recurring_message=recurring, after=OCCURRENCE)
    # then
    next_run = recurring.next_run_at
    recurring.refresh_from_db()
    assert moved
    assert next_run == recurring.next_run_at == datetime(2026, 3, 9, 13, 0, tzinfo=UTC)


def test_a_stale_advance_moves_nothing(church):
    # given: a schedule read by one run, then moved on by another
    recurring = RecurringMessageFactory.create(church=church, cron="0 9 * * *")
    stale = RecurringMessage.objects.get(pk=recurring.pk)
    assert services.recurring_message_advance(recurring_message=recurring, after=OCCURRENCE)
    # when: the stale copy advances from what it read
    moved = services.recurring_message_advance(recurring_message=stale, after=OCCURRENCE + timedelta(days=5))
    # then: the row keeps the first run's value
    recurring.refresh_from_db()
    assert not moved
    assert recurring.next_run_at == datetime(2026, 3, 9, 13, 0, tzinfo=UTC)
