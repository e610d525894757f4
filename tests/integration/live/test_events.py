"""What a committed message change publishes, read off the real broker Redis's channel."""

import json

import pytest
from django.conf import settings
from django.db import transaction
from django.test import override_settings

from config.redis_urls import redis_client
from live import events, metrics
from messaging.api.schemas import MessageOut
from messaging.inbound import services
from tests.integration.messaging.factories import ChurchFactory, PhoneLinkFactory
from tests.support import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def channel():
    """A subscription to the test run's live channel (config/settings/test.py keeps it apart)."""
    client = redis_client(settings.LIVE_REDIS_URL, socket_timeout=5)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(settings.LIVE_CHANNEL)
    pubsub.get_message(timeout=1)  # the subscribe confirmation
    yield pubsub
    pubsub.close()
    client.close()


def _next(pubsub, timeout=5.0) -> dict:
    message = wait_until(
        lambda: pubsub.get_message(timeout=0.5), timeout=timeout, interval=0, message="nothing was published"
    )
    return json.loads(message["data"])


@pytest.mark.django_db(transaction=True)
def test_an_inbound_sms_publishes_after_commit_to_its_churchs_room_with_the_api_fields(channel):
    # given
    church = ChurchFactory.create()
    PhoneLinkFactory.create(church=church, phone="+16465550171")
    # when
    message, created = services.inbound_message_receive(
        provider_message_id="live-integration-1",
        from_phone="+12125550100",
        to_phone="+16465550171",
        body="Hi",
    )
    # then: one emit for the church's room, with the message as the API renders it
    published = _next(channel)
    assert created
    assert (published["method"], published["event"]) == ("emit", "message.inbound")
    assert (published["room"], published["namespace"]) == (f"church:{church.id}", "/")
    assert set(published["data"][0]) == set(MessageOut.model_fields)
    assert published["data"][0]["id"] == message.id


@pytest.mark.django_db(transaction=True)
def test_nothing_is_published_for_a_change_that_rolls_back(channel):
    church = ChurchFactory.create()
    PhoneLinkFactory.create(church=church, phone="+16465550172")
    with pytest.raises(RuntimeError), transaction.atomic():
        services.inbound_message_receive(
            provider_message_id="live-integration-2",
            from_phone="+12125550100",
            to_phone="+16465550172",
            body="x",
        )
        raise RuntimeError("rolled back")
    assert channel.get_message(timeout=1.0) is None


@pytest.mark.django_db(transaction=True)
def test_a_broker_that_does_not_answer_is_counted_and_never_raised():
    # given: the live Redis is a port nothing listens on
    church = ChurchFactory.create()
    PhoneLinkFactory.create(church=church, phone="+16465550173")
    failed = metrics.events_emitted.labels(event="message.inbound", outcome="failed")
    before = failed._value.get()
    events._publishers.clear()
    try:
        with override_settings(LIVE_REDIS_URL="redis://127.0.0.1:1/0"):
            # when
            message, _ = services.inbound_message_receive(
                provider_message_id="live-integration-3", from_phone="+12125550100", to_phone="+16465550173",
                body="still stored",
            )  # fmt: skip
    finally:
        events._publishers.clear()
    # then: the message is stored, the failure counted
    assert message.pk is not None
    assert failed._value.get() == before + 1
