"""Queued messages are sent by a Celery task after the commit; recurring occurrences go out once."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from celery.signals import task_prerun
from django.db import IntegrityError, transaction
from django.utils import timezone

from messaging import services
from messaging.models import DevelopmentSms, Message, PhoneLink, RecurringMessage
from messaging.tasks import send_messages
from tests.integration.messaging.factories import (
    ContactFactory,
    ContactGroupFactory,
    MessageFactory,
    PhoneLinkFactory,
    RecurringMessageFactory,
)

pytestmark = pytest.mark.integration

OCCURRENCE = datetime(2026, 3, 8, 13, 0, tzinfo=UTC)


def test_a_posted_message_is_sent_by_the_task_after_commit(
    api, church, eager_celery, django_capture_on_commit_callbacks
):
    # given
    contact = ContactFactory.create(church=church)
    PhoneLinkFactory.create(church=church, phone="+16465550111")
    # when
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = api.post(
            "/api/messages",
            data=json.dumps({"contact_id": contact.id, "body": "Welcome"}),
            content_type="application/json",
        )
    # then: the send was enqueued on commit, and the sent message announced (messaging/events.py)
    assert len(callbacks) == 2
    message = Message.objects.get(id=response.json()["messages"][0]["id"])
    assert message.status == Message.Status.SENT
    sms = DevelopmentSms.objects.get(provider_message_id=message.provider_message_id)
    assert (sms.to, sms.from_number, sms.body) == (contact.phone, "+16465550111", "Welcome")


def test_nothing_is_enqueued_when_the_transaction_rolls_back(church, django_capture_on_commit_callbacks):
    # given
    contact = ContactFactory.create(church=church)
    # when
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(RuntimeError), transaction.atomic():
        services.message_send(church=church, contact_ids=[contact.id], body="hi")
        raise RuntimeError("rolled back")
    # then
    assert callbacks == []
    assert not Message.objects.exists()


def test_a_message_already_sent_is_not_sent_again(church):
    # given
    message = MessageFactory.create(church=church, status=Message.Status.SENT, provider_message_id="SM1")
    # when
    services.message_deliver(message_id=message.id)
    # then
    assert not DevelopmentSms.objects.exists()


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


def test_what_one_transaction_enqueues_is_published_once_in_tasks_of_the_batch_size(
    church, eager_celery, django_capture_on_commit_callbacks
):
    # given: more queued messages than one task takes
    contacts = ContactFactory.create_batch(3, church=church)
    queued = Message.objects.bulk_create(
        Message(church=church, contact=contacts[i % 3], body=f"m{i}", direction=Message.Direction.OUTBOUND)
        for i in range(services.SEND_TASK_BATCH + 20)
    )
    ids = [message.id for message in queued]
    tasks: list[int] = []

    def count(sender: object = None, kwargs: dict | None = None, **_: object) -> None:
        tasks.append(len((kwargs or {})["message_ids"]))

    # when: one transaction enqueues them in two calls, and commits
    task_prerun.connect(count, sender=send_messages)
    try:
        with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
            services.messages_enqueue(message_ids=ids[:10])
            services.messages_enqueue(message_ids=ids[10:])
    finally:
        task_prerun.disconnect(count, sender=send_messages)
    # then: one publish after the commit, in two tasks (a full one and the rest), each message sent once
    publishes = [c for c in callbacks if getattr(c, "__qualname__", "") == "_PendingSends.publish"]
    assert len(publishes) == 1
    assert tasks == [services.SEND_TASK_BATCH, 20]
    assert Message.objects.filter(id__in=ids, status=Message.Status.SENT).count() == len(ids)
    keys = [f"message-{i}" for i in ids]
    assert DevelopmentSms.objects.filter(idempotency_key__in=keys).count() == len(ids)


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


def test_messages_stuck_in_queued_are_enqueued_again(church, django_capture_on_commit_callbacks):
    # given: one message queued long ago, one just now, one long ago but already sent
    stale = MessageFactory.create(church=church)
    MessageFactory.create(church=church)  # fresh: not enqueued again
    sent = MessageFactory.create(church=church, status=Message.Status.SENT)
    an_hour_ago = timezone.now() - timedelta(hours=1)
    Message.objects.filter(id__in=[stale.id, sent.id]).update(updated_at=an_hour_ago)
    # when
    with django_capture_on_commit_callbacks() as callbacks:
        count = services.messages_requeue_stale(older_than=timedelta(minutes=10))
    again = services.messages_requeue_stale(older_than=timedelta(minutes=10))
    # then
    assert count == 1
    [publish] = callbacks
    assert publish.__self__.message_ids == [stale.id]
    assert again == 0  # touched by the first sweep


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
