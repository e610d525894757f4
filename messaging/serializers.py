"""A message as the API shows it (``MessageOut`` written by django-ninja's encoder), built from a
row or an instance without the API, for the busiest list and for the live updates above
messaging: a client merging both sources sees the same values (tests compare them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from messaging.models import Message
from messaging.sending.selectors import MESSAGE_LIST_FIELDS


def json_datetime(value: datetime) -> str:
    """A datetime as django-ninja's encoder writes it (DjangoJSONEncoder: milliseconds, "Z")."""
    text = value.isoformat()
    if value.microsecond:
        text = text[:23] + text[26:]
    if text.endswith("+00:00"):
        text = text[:-6] + "Z"
    return text


def _jsonable(value: Any) -> Any:
    return json_datetime(value) if isinstance(value, datetime) else value


def message_row_json(row: tuple[Any, ...]) -> dict[str, Any]:
    """A row of ``MESSAGE_LIST_FIELDS`` (``message_list_rows``) as the API's JSON object."""
    return {field: _jsonable(value) for field, value in zip(MESSAGE_LIST_FIELDS, row, strict=True)}


def message_json(message: Message) -> dict[str, Any]:
    """A message as ``GET /api/messages/{id}`` shows it, in plain JSON values."""
    return message_row_json(tuple(getattr(message, field) for field in MESSAGE_LIST_FIELDS))
