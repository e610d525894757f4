"""The API's request and response schemas (django-ninja ``Schema``, i.e. pydantic models).

Bounds keep every client value inside what PostgreSQL accepts (bigint ids, no NUL in text), so
a strange input is a 400 and never a database error.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from ninja import Field, Schema
from pydantic import AfterValidator

from messaging.models import BODY_MAX_LENGTH, Contact, RecurringMessage

MAX_ID = 2**63 - 1


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Text = Annotated[str, AfterValidator(_no_nul)]
GroupName = Annotated[Text, Field(min_length=1, max_length=100)]


class ErrorOut(Schema):
    detail: str
    field: str | None


class LoginIn(Schema):
    username: Text = Field(max_length=150)
    password: Text = Field(max_length=200)


class ChurchOut(Schema):
    id: int
    name: str
    time_zone: str


class LoginOut(Schema):
    token: str
    token_type: str = "bearer"  # noqa: S105 (a scheme name, not a secret)
    church: ChurchOut


class ContactIn(Schema):
    phone: Text = Field(max_length=40, description="E.164, e.g. +12025550123")
    name: Text = Field("", max_length=200)
    groups: list[GroupName] = Field(default_factory=list, max_length=20)


class ContactOut(Schema):
    id: int
    phone: str
    name: str
    opted_out: bool
    groups: list[str]
    created_at: datetime

    @staticmethod
    def resolve_groups(contact: Contact) -> list[str]:
        return sorted(group.name for group in contact.groups.all())


class ContactPage(Schema):
    items: list[ContactOut]
    next_after: int | None


class MessageIn(Schema):
    contact_id: Id | None = Field(None, description="one recipient")
    contact_ids: list[Id] | None = Field(None, description="several recipients", max_length=1000)
    body: Text = Field(max_length=BODY_MAX_LENGTH)


class MessageOut(Schema):
    id: int
    contact_id: int
    direction: str
    body: str
    status: str
    provider_message_id: str | None
    error: str
    recurring_message_id: int | None
    occurrence: datetime | None
    created_at: datetime
    sent_at: datetime | None


class MessagePage(Schema):
    items: list[MessageOut]
    next_after: int | None


class MessagesSent(Schema):
    messages: list[MessageOut]
    replayed: bool


class MessageFilters(Schema):
    after: Id | None = Field(None, description="the last id of the previous page")
    limit: int = Field(50, ge=1, le=200)
    contact: Id | None = None
    direction: Literal["inbound", "outbound"] | None = None


class PageFilters(Schema):
    after: Id | None = Field(None, description="the last id of the previous page")
    limit: int = Field(50, ge=1, le=200)


class RecurringMessageIn(Schema):
    body: Text = Field(max_length=BODY_MAX_LENGTH)
    cron: Text = Field(max_length=100, description="five fields, in the church's time zone")
    group: GroupName | None = Field(None, description="a group name; none means every contact")
    active: bool = True


class RecurringMessagePatch(Schema):
    active: bool


class RecurringMessageOut(Schema):
    id: int
    body: str
    cron: str
    group: str | None
    active: bool
    next_run_at: datetime | None

    @staticmethod
    def resolve_group(recurring_message: RecurringMessage) -> str | None:
        return recurring_message.group.name if recurring_message.group else None


class RecurringMessagePage(Schema):
    items: list[RecurringMessageOut]
    next_after: int | None


class InboundSmsIn(Schema):
    message_id: Text = Field(min_length=1, max_length=64, description="the provider's id")
    from_: Text = Field(alias="from", max_length=40)
    to: Text = Field(max_length=40)
    body: Text = Field("", max_length=BODY_MAX_LENGTH)


class SmsStatusIn(Schema):
    message_id: Text = Field(min_length=1, max_length=64)
    status: Literal["sent", "delivered", "failed", "undelivered"]
    error: Text = Field("", max_length=2000)


class WebhookOut(Schema):
    message_id: int
    duplicate: bool
    status: str


# The error answers every church endpoint may give, and those of the provider callbacks.
ERRORS = {400: ErrorOut, 401: ErrorOut, 404: ErrorOut, 409: ErrorOut, 413: ErrorOut}
WEBHOOK_ERRORS = {400: ErrorOut, 403: ErrorOut, 404: ErrorOut, 413: ErrorOut}


def page(items: list[Contact] | list[RecurringMessage], limit: int) -> dict[str, object]:
    """One page of a keyset listing; the selector was asked for ``limit + 1`` rows to see if more follow."""
    shown = items[:limit]
    return {"items": shown, "next_after": shown[-1].id if len(items) > limit else None}
