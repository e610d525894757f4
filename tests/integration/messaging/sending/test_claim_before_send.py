"""At most one provider call per message: claim before sending, never resend blindly (ADR 0011)."""

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, connections

from messaging.gateway import DevelopmentGateway, OutboundSms
from messaging.models import DevelopmentSms, Message
from messaging.sending import services
from tests.integration.messaging.factories import MessageFactory

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


class SlowGateway(DevelopmentGateway):
    """Records the call at once, answers a moment later: a provider call in flight."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def send(self, sms: OutboundSms) -> str:
        provider_message_id = super().send(sms)
        time.sleep(self.seconds)
        return provider_message_id


class IdempotentGateway(DevelopmentGateway):
    supports_idempotency_key = True


def test_two_concurrent_deliveries_make_one_provider_call(church):
    # given a queued message and two workers handed it at the same instant
    message = MessageFactory.create(church=church)
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def deliver() -> None:
        start.wait()
        try:
            delivered = services.message_deliver(message_id=message.id, gateway=SlowGateway(0.3))
            outcomes.append(delivered.status if delivered else "missing")
        finally:
            connections.close_all()

    workers = [threading.Thread(target=deliver) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    # then the provider was called once, and the message is sent
    calls = DevelopmentSms.objects.filter(idempotency_key=f"message-{message.id}")
    assert calls.count() == 1
    message.refresh_from_db()
    assert (message.status, message.send_attempts) == (Message.Status.SENT, 1)
    assert sorted(outcomes) == ["sending", "sent"] or sorted(outcomes) == ["sent", "sent"]


_WORKER = """
import sys, time, django
django.setup()
from messaging.sending import services
from tests.integration.messaging.sending.test_claim_before_send import SlowGateway
services.message_deliver(message_id=int(sys.argv[1]), gateway=SlowGateway(600))
"""


def _worker_killed_mid_send(message_id: int) -> None:
    """Deliver in another process and SIGKILL it once the provider has the message."""
    env = {
        **os.environ,
        "DB_NAME": connection.settings_dict["NAME"],
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
    }
    worker = subprocess.Popen([sys.executable, "-c", _WORKER, str(message_id)], env=env)
    try:
        deadline = time.monotonic() + 30
        while not DevelopmentSms.objects.filter(idempotency_key=f"message-{message_id}").exists():
            assert worker.poll() is None, "the worker exited before calling the provider"
            assert time.monotonic() < deadline, "the worker never called the provider"
            time.sleep(0.05)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)


def test_a_worker_killed_between_claim_and_answer_causes_no_second_provider_call(church):
    # given a worker that claimed the message, called the provider, and was killed before the answer
    message = MessageFactory.create(church=church)
    _worker_killed_mid_send(message.id)
    message.refresh_from_db()
    assert message.status == Message.Status.SENDING
    # when the task is delivered again (acks_late), and later the sweep finds it stuck
    again = services.message_deliver(message_id=message.id)
    recovered = services.messages_recover_stuck_sending(older_than=timedelta(0))
    after_review = services.message_deliver(message_id=message.id)
    # then the provider was called exactly once: the message waits for a person, never resent
    assert again is not None and again.status == Message.Status.SENDING
    assert (recovered.requeued, recovered.held_for_review) == (0, 1)
    assert after_review is not None and after_review.status == Message.Status.REVIEW
    assert "may have been sent" in after_review.error
    assert DevelopmentSms.objects.filter(idempotency_key=f"message-{message.id}").count() == 1


def test_with_a_provider_that_deduplicates_a_stuck_message_is_sent_again_under_the_same_key(church):
    # given a message whose worker died after the claim
    message = MessageFactory.create(church=church)
    _worker_killed_mid_send(message.id)
    # when the sweep runs against a provider that honours idempotency keys
    recovered = services.messages_recover_stuck_sending(older_than=timedelta(0), gateway=IdempotentGateway())
    delivered = services.message_deliver(message_id=message.id, gateway=IdempotentGateway())
    # then it was queued again and sent with the same key: the provider can tell it is a repeat
    assert (recovered.requeued, recovered.held_for_review) == (1, 0)
    assert delivered is not None and (delivered.status, delivered.send_attempts) == (Message.Status.SENT, 2)
    sends = list(DevelopmentSms.objects.filter(idempotency_key=f"message-{message.id}").order_by("id"))
    assert [sms.duplicate for sms in sends] == [False, True]


def test_a_message_claimed_a_moment_ago_is_not_touched_by_the_sweep(church):
    # given a message another worker is sending right now
    message = MessageFactory.create(church=church)
    assert services.message_claim(message_id=message.id)
    # when
    recovered = services.messages_recover_stuck_sending(older_than=timedelta(minutes=5))
    # then
    assert (recovered.requeued, recovered.held_for_review) == (0, 0)
    message.refresh_from_db()
    assert message.status == Message.Status.SENDING
