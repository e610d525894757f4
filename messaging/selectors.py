"""Reads. Every selector takes the caller's church: another church's row is simply not found.

Plain reads may be served by a replica (see the router); reads that decide a write live in
services, inside ``transaction.atomic()``, where they go to the primary.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from messaging import tokens
from messaging.errors import NotFound
from messaging.models import Church, Contact, Message, PhoneLink, RecurringMessage, StaffMember
from replicas import PRIMARY_DB_ALIAS


def api_token_hash(*, raw_token: str) -> str:
    return tokens.token_hash(raw_token=raw_token)


def staff_member_for_token(*, raw_token: str) -> StaffMember | None:
    """The staff member a live bearer token belongs to (church and user loaded), or None.

    Checked against the primary, never a replica, through the per-process cache that every
    revocation drops on every server (messaging/tokens.py): logout, expiry and deactivation
    hold from the next request on. The object is shared by the process's requests: read it,
    never change it.
    """
    staff: StaffMember | None = tokens.token_cache.staff_member(raw_token=raw_token)
    return staff


def contact_list(*, church: Church, after: int | None = None, limit: int = 50) -> list[Contact]:
    queryset = Contact.objects.filter(church=church).prefetch_related("groups").order_by("id")
    if after is not None:
        queryset = queryset.filter(id__gt=after)
    return list(queryset[:limit])


def contact_get(*, church: Church, contact_id: int) -> Contact:
    contact = Contact.objects.filter(church=church, id=contact_id).prefetch_related("groups").first()
    if contact is None:
        raise NotFound(f"contact {contact_id} not found", field="contact_id")
    return contact


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


# The message list's columns, in MessageOut's order: the list is served from plain rows
# (no model instances, no per-row validation; messaging/api.py serialises them directly).
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


def recurring_message_list(
    *, church: Church, after: int | None = None, limit: int = 50
) -> list[RecurringMessage]:
    queryset = RecurringMessage.objects.filter(church=church).select_related("group").order_by("id")
    if after is not None:
        queryset = queryset.filter(id__gt=after)
    return list(queryset[:limit])


def recurring_message_get(*, church: Church, recurring_message_id: int) -> RecurringMessage:
    recurring_message = (
        RecurringMessage.objects.filter(church=church, id=recurring_message_id)
        .select_related("group")
        .first()
    )
    if recurring_message is None:
        raise NotFound(f"recurring message {recurring_message_id} not found", field="recurring_message_id")
    return recurring_message


def recurring_messages_due(*, tick: datetime, after_id: int, limit: int = 100) -> list[RecurringMessage]:
    """Active recurring messages due at or before ``tick``, by id, after ``after_id``.

    Read on the primary: the recurring-messages job decides its writes from it.
    """
    return list(
        RecurringMessage.objects.using(PRIMARY_DB_ALIAS)
        .filter(active=True, next_run_at__lte=tick, id__gt=after_id)
        .select_related("church")
        .order_by("id")[:limit]
    )


def phone_links_stuck(*, stuck_before: datetime, limit: int) -> list[PhoneLink]:
    """Pending links created before ``stuck_before``, least recently tried first (on the primary)."""
    return list(
        PhoneLink.objects.using(PRIMARY_DB_ALIAS)
        .filter(state=PhoneLink.State.PENDING, created_at__lte=stuck_before)
        .order_by("last_attempt_at", "id")[:limit]
    )


def recurring_message_audience(*, recurring_message: RecurringMessage) -> QuerySet[Contact]:
    """Who an occurrence goes to: the named group, or every contact; never an opted-out one."""
    queryset = Contact.objects.filter(church_id=recurring_message.church_id, opted_out=False)
    if recurring_message.group_id is not None:
        queryset = queryset.filter(groups=recurring_message.group_id)
    return queryset
