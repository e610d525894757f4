"""Reads of recurring messages: a church's list, and what the recurring-messages job sends."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from config.databases import PRIMARY_DB_ALIAS
from messaging.errors import NotFound
from messaging.models import Church, Contact, RecurringMessage


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


def recurring_message_audience(*, recurring_message: RecurringMessage) -> QuerySet[Contact]:
    """Who an occurrence goes to: the named group, or every contact; never an opted-out one."""
    queryset = Contact.objects.filter(church_id=recurring_message.church_id, opted_out=False)
    if recurring_message.group_id is not None:
        queryset = queryset.filter(groups=recurring_message.group_id)
    return queryset
