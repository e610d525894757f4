"""Queued messages are sent by a Celery task after the commit, once; what is left queued goes again."""

import json
from datetime import timedelta

import pytest
from celery.signals import task_prerun
from django.db import transaction
from django.utils import timezone

from messaging.models import DevelopmentSms, Message
from messaging.sending import services
from messaging.tasks import send_messages
from tests.integration.messaging.factories import (
    ContactFactory,
    MessageFactory,
    PhoneLinkFactory,
)

pytestmark = pytest.mark.integration


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
