"""Reads of a church's messages. Plain reads may be served by a replica (see the router)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from messaging.contacts.selectors import contact_get
from messaging.errors import NotFound
from messaging.models import Church, Message

# The message list's columns, in MessageOut's order: the list is served from plain rows
# (no model instances, no per-row validation; messaging/serializers.py writes them as JSON).
MESSAGE_LIST_FIELDS = (
    "id",
    "contact_id",
    "direction",
    "body",
    "status",
    "provider_message_id",
    "error",
    "recurring_message_id",
    "occurrence",
    "created_at",
    "sent_at",
)


def _message_page(
    *, church: Church, after: int | None, contact_id: int | None, direction: str | None
) -> QuerySet[Message]:
    queryset = Message.objects.filter(church_id=church.id).order_by("id")
    if contact_id is not None:
        contact_get(church=church, contact_id=contact_id)  # another church's contact is a 404
        queryset = queryset.filter(contact_id=contact_id)
    if direction is not None:
        queryset = queryset.filter(direction=direction)
    if after is not None:
        queryset = queryset.filter(id__gt=after)
    return queryset


def message_list_rows(
    *,
    church: Church,
    after: int | None = None,
    limit: int = 50,
    contact_id: int | None = None,
    direction: str | None = None,
) -> list[tuple[Any, ...]]:
    """A church's messages, keyset-paginated by id (``after`` is the last id of the previous page),
    as tuples of ``MESSAGE_LIST_FIELDS``: one query, no instances."""
    queryset = _message_page(church=church, after=after, contact_id=contact_id, direction=direction)
    return list(queryset.values_list(*MESSAGE_LIST_FIELDS)[:limit])


def message_get(*, church: Church, message_id: int) -> Message:
    message = Message.objects.filter(church=church, id=message_id).first()
    if message is None:
        raise NotFound(f"message {message_id} not found", field="message_id")
    return message
