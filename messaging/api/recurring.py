"""``/api/recurring-messages``: the church's schedules, created, paused and resumed."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Query, Router, Status

from messaging.api.auth import request_church
from messaging.api.schemas import (
    ERRORS,
    Id,
    PageFilters,
    RecurringMessageIn,
    RecurringMessageOut,
    RecurringMessagePage,
    RecurringMessagePatch,
    page,
)
from messaging.models import RecurringMessage
from messaging.recurring import selectors, services

router = Router()


@router.get("/api/recurring-messages", response={200: RecurringMessagePage, **ERRORS}, tags=["recurring"])
def recurring_messages_list(request: HttpRequest, filters: Query[PageFilters]) -> dict[str, object]:
    items = selectors.recurring_message_list(
        church=request_church(request), after=filters.after, limit=filters.limit + 1
    )
    return page(items, filters.limit)


@router.post("/api/recurring-messages", response={201: RecurringMessageOut, **ERRORS}, tags=["recurring"])
def recurring_messages_create(request: HttpRequest, payload: RecurringMessageIn) -> Status[RecurringMessage]:
    """Schedule a message by cron expression, read in the church's time zone."""
    recurring_message = services.recurring_message_create(
        church=request_church(request),
        body=payload.body,
        cron=payload.cron,
        group_name=payload.group,
        active=payload.active,
    )
    return Status(201, recurring_message)


@router.patch(
    "/api/recurring-messages/{recurring_message_id}",
    response={200: RecurringMessageOut, **ERRORS},
    tags=["recurring"],
)
def recurring_messages_patch(
    request: HttpRequest, recurring_message_id: Id, payload: RecurringMessagePatch
) -> RecurringMessage:
    """Pause (``active: false``) or resume; a resumed schedule skips the runs it missed."""
    return services.recurring_message_set_active(
        church=request_church(request), recurring_message_id=recurring_message_id, active=payload.active
    )
