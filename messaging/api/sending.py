"""``/api/messages``: the church's messages, and sending new ones."""

from __future__ import annotations

import json
from typing import Annotated, Any

from django.http import HttpRequest, HttpResponse
from ninja import Header, Query, Router, Status

from messaging.api.auth import request_church
from messaging.api.schemas import (
    ERRORS,
    Id,
    MessageFilters,
    MessageIn,
    MessageOut,
    MessagePage,
    MessagesSent,
    Text,
)
from messaging.models import Message
from messaging.sending import selectors, services
from messaging.serializers import message_row_json

router = Router()


def rows_json_response(data: dict[str, Any], status: int = 200) -> HttpResponse:
    """Plain JSON values (str, int, None, lists, dicts) as the API's JSON response."""
    return HttpResponse(json.dumps(data), status=status, content_type="application/json; charset=utf-8")


@router.get("/api/messages", response={200: MessagePage, **ERRORS}, tags=["messages"])
def messages_list(request: HttpRequest, filters: Query[MessageFilters]) -> HttpResponse:
    """The church's messages by id (keyset pagination), optionally for one contact or direction."""
    rows = selectors.message_list_rows(
        church=request_church(request),
        after=filters.after,
        limit=filters.limit + 1,
        contact_id=filters.contact,
        direction=filters.direction,
    )
    # The busiest read: rows go straight to JSON, in exactly the bytes the MessagePage schema
    # would produce (a test compares them), without a model instance or a validation per row.
    page = rows[: filters.limit]
    return rows_json_response(
        {
            "items": [message_row_json(row) for row in page],
            "next_after": page[-1][0] if len(rows) > filters.limit else None,
        }
    )


@router.post("/api/messages", response={201: MessagesSent, **ERRORS}, tags=["messages"])
def messages_send(
    request: HttpRequest,
    payload: MessageIn,
    idempotency_key: Annotated[
        Text | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)
    ] = None,
) -> Status[dict[str, object]]:
    """Queue a message to one contact (``contact_id``) or several (``contact_ids``).

    With an ``Idempotency-Key`` header a retried request creates nothing new and gets the
    first request's messages back (``replayed`` is true).
    """
    contact_ids = list(payload.contact_ids or [])
    if payload.contact_id is not None:
        contact_ids.append(payload.contact_id)
    result = services.message_send(
        church=request_church(request),
        contact_ids=contact_ids,
        body=payload.body,
        idempotency_key=idempotency_key,
    )
    return Status(201, {"messages": result.messages, "replayed": result.replayed})


@router.get("/api/messages/{message_id}", response={200: MessageOut, **ERRORS}, tags=["messages"])
def messages_get(request: HttpRequest, message_id: Id) -> Message:
    return selectors.message_get(church=request_church(request), message_id=message_id)
