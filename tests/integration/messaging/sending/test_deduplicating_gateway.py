"""The deduplicating development gateway: a provider's idempotency keys on the development
record, so a message whose worker died mid-send is resent under its key and reaches the
provider once."""

import threading
from datetime import timedelta

import pytest
from django.db import connections

from messaging.gateway import DeduplicatingDevelopmentGateway, OutboundSms
from messaging.models import DevelopmentSms, Message
from messaging.sending import services
from tests.integration.messaging.factories import MessageFactory

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _sms(key: str) -> OutboundSms:
    return OutboundSms(to="+12125550100", from_number="+16465550100", body="hello", idempotency_key=key)


def test_a_key_seen_before_answers_the_first_id_and_sends_nothing_more():
    gateway = DeduplicatingDevelopmentGateway()
    first = gateway.send(_sms("message-1"))
    # when the same key comes again, and another key
    again = gateway.send(_sms("message-1"))
    other = gateway.send(_sms("message-2"))
    # then
    assert again == first and other != first
    assert DevelopmentSms.objects.filter(idempotency_key="message-1").count() == 1
    assert not DevelopmentSms.objects.filter(duplicate=True).exists()


def test_concurrent_calls_with_one_key_make_one_send():
    # given eight workers calling with one key at the same instant
    start = threading.Barrier(8)
    answers: list[str] = []

    def call() -> None:
        start.wait()
        try:
            answers.append(DeduplicatingDevelopmentGateway().send(_sms("message-7")))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    # then one SMS, and every caller got its id
    assert DevelopmentSms.objects.filter(idempotency_key="message-7").count() == 1
    assert len(answers) == 8 and len(set(answers)) == 1


def test_a_message_whose_worker_died_mid_send_is_resent_and_reaches_the_provider_once(church):
    # given a message claimed and handed to the provider by a worker that died before the answer
    gateway = DeduplicatingDevelopmentGateway()
    message = MessageFactory.create(church=church)
    assert services.message_claim(message_id=message.id)
    first = gateway.send(_sms(services.message_idempotency_key(message_id=message.id)))
    # when the sweep finds it stuck and it is delivered again
    recovered = services.messages_recover_stuck_sending(older_than=timedelta(0), gateway=gateway)
    delivered = services.message_deliver(message_id=message.id, gateway=gateway)
    # then it was requeued, sent under the same key, and the provider sent one SMS
    assert (recovered.requeued, recovered.held_for_review) == (1, 0)
    assert delivered is not None and delivered.status == Message.Status.SENT
    assert delivered.provider_message_id == first
    assert DevelopmentSms.objects.filter(idempotency_key=f"message-{message.id}").count() == 1
