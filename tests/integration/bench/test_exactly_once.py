"""The Sunday burst's exactly-once check (bench/exactly_once.py) on real PostgreSQL: it passes
for a burst delivered once through the development gateway, and fails for each planted fault."""

from datetime import UTC, datetime, timedelta

import pytest

from bench.burst import BURST_BODY
from bench.exactly_once import key_prefix, provider_check
from messaging.gateway import DevelopmentGateway, OutboundSms
from messaging.models import DevelopmentSms, Message
from messaging.sending.services import message_idempotency_key
from tests.integration.messaging.factories import (
    ChurchFactory,
    ContactFactory,
    MessageFactory,
    RecurringMessageFactory,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

TICK = datetime(2026, 11, 29, 9, tzinfo=UTC)


def _send(message: Message) -> None:
    """One call to the development provider, as the sending worker makes it."""
    DevelopmentGateway().send(
        OutboundSms(
            to=message.contact.phone,
            from_number="+16465550100",
            body=message.body,
            idempotency_key=message_idempotency_key(message_id=message.pk),
        )
    )


@pytest.fixture
def burst() -> tuple[int, list[Message]]:
    """Two churches with a burst message each, three recipients in all (and one opted out),
    every message sent once; returns (the provider's last row before the burst, the messages)."""
    first = DevelopmentSms.objects.order_by("-id").values_list("id", flat=True).first() or 0
    messages = []
    for size in (2, 1):
        church = ChurchFactory.create()
        recurring = RecurringMessageFactory.create(church=church, body=BURST_BODY)
        ContactFactory.create(church=church, opted_out=True)
        for _ in range(size):
            messages.append(
                MessageFactory.create(
                    church=church,
                    contact=ContactFactory.create(church=church),
                    body=BURST_BODY,
                    recurring_message=recurring,
                    occurrence=TICK,
                    status=Message.Status.SENT,
                )
            )
    for message in messages:
        _send(message)
    return first, messages


def test_the_key_prefix_is_the_senders() -> None:
    assert message_idempotency_key(message_id=1234) == f"{key_prefix()}1234"


def test_a_burst_delivered_once_passes(burst) -> None:
    first, _messages = burst
    check = provider_check(body=BURST_BODY, first_provider_id=first)
    assert (check.recipients, check.messages, check.provider_calls) == (3, 3, 3)
    assert check.problems() == [] and check.exactly_once


def test_a_message_sent_twice_fails(burst) -> None:
    # given the provider called twice for one message (a resend without deduplication)
    first, messages = burst
    _send(messages[0])
    # then
    check = provider_check(body=BURST_BODY, first_provider_id=first)
    assert check.sent_twice == 1 and check.recipients_more_than_once == 1
    assert not check.exactly_once


def test_two_messages_to_one_recipient_fail_even_if_each_was_sent_once(burst) -> None:
    # given a second message of the burst to the same person (another occurrence: no unique
    # constraint stops it, and grouping by the constraint's columns would not see it)
    first, messages = burst
    again = MessageFactory.create(
        church=messages[0].church,
        contact=messages[0].contact,
        body=BURST_BODY,
        recurring_message=messages[0].recurring_message,
        occurrence=TICK + timedelta(minutes=1),
        status=Message.Status.SENT,
    )
    _send(again)
    # then
    check = provider_check(body=BURST_BODY, first_provider_id=first)
    assert check.sent_twice == 0
    assert check.recipients_more_than_once == 1
    assert "4 messages for 3 recipients" in check.problems()


def test_a_recipient_without_a_message_and_a_message_never_sent_fail(burst) -> None:
    # given one more recipient who got no message, and one message the provider never saw
    first, messages = burst
    ContactFactory.create(church=messages[0].church)
    unsent = MessageFactory.create(
        church=messages[2].church,
        contact=ContactFactory.create(church=messages[2].church),
        body=BURST_BODY,
        recurring_message=messages[2].recurring_message,
        occurrence=TICK,
    )
    # then
    check = provider_check(body=BURST_BODY, first_provider_id=first)
    assert check.recipients == 5 and check.messages == 4
    assert check.unsent == 1 and check.recipients_without_sms == 2
    assert unsent.pk and not check.exactly_once


def test_a_provider_call_for_no_message_of_the_burst_fails(burst) -> None:
    # given a call the provider recorded with a key that is no burst message's
    first, messages = burst
    DevelopmentGateway().send(
        OutboundSms(to=messages[0].contact.phone, from_number="+16465550100", body=BURST_BODY,
                    idempotency_key="message-0")
    )  # fmt: skip
    # then
    check = provider_check(body=BURST_BODY, first_provider_id=first)
    assert check.problems() == ["1 provider calls carry no message of the burst"]
