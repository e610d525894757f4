"""A message serialised without the API (the live updates' payload) is what the API's schema gives."""

import json
from datetime import UTC, datetime

import pytest
from ninja.responses import NinjaJSONEncoder

from messaging.api.schemas import MessageOut
from messaging.models import Message
from messaging.serializers import message_json
from tests.integration.messaging.factories import ContactFactory, MessageFactory, RecurringMessageFactory

pytestmark = pytest.mark.integration


def test_a_message_is_serialised_as_the_api_schema_writes_it(church):
    # given: messages with and without their optional fields, times with and without microseconds
    contact = ContactFactory.create(church=church)
    made = [
        MessageFactory.create(church=church, contact=contact),
        MessageFactory.create(
            church=church,
            contact=contact,
            status=Message.Status.SENT,
            provider_message_id="SM123",
            sent_at=datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC),
        ),
        MessageFactory.create(
            church=church,
            contact=contact,
            recurring_message=RecurringMessageFactory.create(church=church),
            occurrence=datetime(2026, 3, 1, 9, 0, 0, 123456, tzinfo=UTC),
            body='Quotes " and \\ backslashes, é and emoji 🙂',
            status=Message.Status.FAILED,
            error="provider said no",
        ),
    ]
    for message in made:
        # when
        serialised = message_json(message)
        # then: the same JSON as the schema through django-ninja's encoder, as published
        reference = json.loads(
            json.dumps(MessageOut.model_validate(message).model_dump(), cls=NinjaJSONEncoder)
        )
        assert json.loads(json.dumps(serialised)) == reference
        assert list(serialised) == list(reference)
