"""The message list is served from plain rows: the same bytes the MessagePage schema gives."""

import json
from datetime import UTC, datetime

import pytest
from ninja.responses import NinjaJSONEncoder

from messaging.api.schemas import MessagePage
from messaging.models import Message
from tests.integration.messaging.factories import ContactFactory, MessageFactory, RecurringMessageFactory

pytestmark = pytest.mark.integration


def _schema_bytes(church, *, limit: int, **filters) -> bytes:
    """What django-ninja writes for MessagePage built from model instances (the reference)."""
    items = list(Message.objects.filter(church=church, **filters).order_by("id")[: limit + 1])
    page = items[:limit]
    data = MessagePage.model_validate(
        {"items": page, "next_after": page[-1].id if len(items) > limit else None}
    ).model_dump()
    return json.dumps(data, cls=NinjaJSONEncoder).encode()


@pytest.fixture
def messages(church):
    contact = ContactFactory.create(church=church)
    recurring = RecurringMessageFactory.create(church=church)
    made = [
        MessageFactory.create(church=church, contact=contact),  # queued, no optional fields
        MessageFactory.create(
            church=church,
            contact=contact,
            status=Message.Status.SENT,
            provider_message_id="SM123",
            sent_at=datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC),  # no microseconds
        ),
        MessageFactory.create(
            church=church,
            contact=contact,
            recurring_message=recurring,
            occurrence=datetime(2026, 3, 1, 9, 0, 0, 123456, tzinfo=UTC),
            body='Quotes " and \\ backslashes, é and emoji 🙂',
            status=Message.Status.FAILED,
            error="provider said no",
        ),
        MessageFactory.create(church=church, contact=contact, direction=Message.Direction.INBOUND),
    ]
    return contact, made


@pytest.mark.parametrize(
    ("query", "limit", "filters"),
    [
        ("", 50, {}),
        ("?limit=2", 2, {}),
        ("?direction=inbound", 50, {"direction": "inbound"}),
    ],
)
def test_the_list_is_byte_for_byte_what_the_schema_gives(api, church, messages, query, limit, filters):
    response = api.get(f"/api/messages{query}")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response.content == _schema_bytes(church, limit=limit, **filters)


def test_pages_follow_and_filters_hold(api, church, messages):
    contact, made = messages
    first = api.get("/api/messages?limit=3").json()
    assert [item["id"] for item in first["items"]] == [m.id for m in made[:3]]
    assert first["next_after"] == made[2].id
    rest = api.get(f"/api/messages?limit=3&after={first['next_after']}").json()
    assert [item["id"] for item in rest["items"]] == [made[3].id]
    assert rest["next_after"] is None
    assert api.get(f"/api/messages?contact={contact.id}").json()["items"][0]["contact_id"] == contact.id
