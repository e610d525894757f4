"""The API's request and response schemas (django-ninja ``Schema``, i.e. pydantic models).

The schema is the contract: every rule the server checks on a request's form is stated here, so
that the OpenAPI schema carries it (lengths, patterns, enums, strict types) and a request it
allows is never refused with a 400. Bounds keep every client value inside what PostgreSQL
accepts (bigint ids, no NUL in text). Input bodies are strict: ``{"active": 0}`` is not a
boolean and ``{"contact_id": "7"}`` not an id. What no schema can state is answered 422: a phone
number of the right form that no one can have, a cron expression that never fires
(``messaging.errors.Unprocessable``); what depends on stored data is 404 or 409.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from ninja import Field, Schema
from pydantic import BeforeValidator, ConfigDict, StrictBool, ValidationInfo, field_validator, model_validator

from messaging.models import BODY_MAX_LENGTH, Contact, RecurringMessage

MAX_ID = 2**63 - 1

# Patterns are read by pydantic (Rust regex) on the server and by clients and fuzzers (ECMA or
# Python regex): only constructs that mean the same in all three. NUL never reaches PostgreSQL.
NO_NUL = r"^[^\x00]*$"
# At least one character that is not white space (a blank body is refused), and no NUL.
NOT_BLANK = r"^[^\x00]*[^\x00\s][^\x00]*$"
# A phone number as people write it: digits, an optional leading +, spaces, dots, dashes and
# parentheses; it is read with the church's default region and stored in E.164.
PHONE = r"^\+?[0-9 ().\-]+$"
# Five cron fields (minute hour day-of-month month day-of-week), each a list of *, a number or
# a name, or a range, with an optional step; separated by spaces or tabs.
_CRON_ATOM = r"(\*|[0-9]{1,2}|[A-Za-z]{3})(-([0-9]{1,2}|[A-Za-z]{3}))?(/[0-9]{1,2})?"
_CRON_FIELD = rf"{_CRON_ATOM}(,{_CRON_ATOM})*"
CRON = rf"^[ \t]*{_CRON_FIELD}([ \t]+{_CRON_FIELD}){{4}}[ \t]*$"


def _integral_float_as_int(value: Any) -> Any:
    # JSON has one number type: 7.0 is an integer to JSON Schema, and to us; "7" and true are not.
    return int(value) if isinstance(value, float) and value.is_integer() else value


Id = Annotated[int, Field(ge=1, le=MAX_ID), BeforeValidator(_integral_float_as_int)]
Text = Annotated[str, Field(pattern=NO_NUL)]
GroupName = Annotated[str, Field(min_length=1, max_length=100, pattern=NOT_BLANK)]
Body = Annotated[str, Field(min_length=1, max_length=BODY_MAX_LENGTH, pattern=NOT_BLANK)]


class StrictIn(Schema):
    """A request body: JSON types as the schema states them, never coerced."""

    model_config = ConfigDict(strict=True)


class ErrorOut(Schema):
    detail: str
    field: str | None


class LoginIn(StrictIn):
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


class ContactIn(StrictIn):
    phone: str = Field(
        max_length=40,
        pattern=PHONE,
        description="E.164, e.g. +12025550123, or national in the church's default region; "
        "a number of this form that no one can have is a 422",
    )
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


def _one_recipient_at_least(schema: dict[str, Any]) -> None:
    schema["anyOf"] = [
        {"required": ["contact_id"], "properties": {"contact_id": {"type": "integer"}}},
        {"required": ["contact_ids"], "properties": {"contact_ids": {"type": "array", "minItems": 1}}},
    ]


class MessageIn(StrictIn):
    """``contact_id``, ``contact_ids`` or both: at least one recipient."""

    model_config = ConfigDict(strict=True, json_schema_extra=_one_recipient_at_least)

    contact_id: Id | None = Field(None, description="one recipient")
    contact_ids: list[Id] | None = Field(
        None, description="several recipients", max_length=1000, validate_default=True
    )
    body: Body

    @field_validator("contact_ids")
    @classmethod
    def _has_a_recipient(cls, value: list[int] | None, info: ValidationInfo) -> list[int] | None:
        if info.data.get("contact_id") is None and not value:
            raise ValueError("name at least one contact (contact_id or contact_ids)")
        return value


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


class StrictQuery(Schema):
    """Query parameters: one the operation does not declare is a 400 naming it (a misspelt filter
    would otherwise be ignored, and the client would get an answer to another question)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _with_undeclared(cls, data: Any, info: ValidationInfo) -> Any:
        # ninja hands over the declared parameters only; the request (its context) has them all.
        request = (info.context or {}).get("request")
        if request is None or not isinstance(data, dict):
            return data
        undeclared = {name: request.GET[name] for name in request.GET if name not in cls.model_fields}
        return {**data, **undeclared}


class MessageFilters(StrictQuery):
    after: Id | None = Field(None, description="the last id of the previous page")
    limit: int = Field(50, ge=1, le=200)
    contact: Id | None = None
    direction: Literal["inbound", "outbound"] | None = None


class PageFilters(StrictQuery):
    after: Id | None = Field(None, description="the last id of the previous page")
    limit: int = Field(50, ge=1, le=200)


class RecurringMessageIn(StrictIn):
    body: Body
    cron: str = Field(
        max_length=100,
        pattern=CRON,
        description="five fields, in the church's time zone; one that never fires (e.g. "
        "February 30th) or that the scheduler cannot read is a 422",
    )
    group: GroupName | None = Field(None, description="a group name; none means every contact")
    active: StrictBool = True


class RecurringMessagePatch(StrictIn):
    active: StrictBool


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


class EdgeErrorOut(Schema):
    """What the edge (NGINX) answers by itself: a body over its limit (413), too many requests
    from one address (429), or every app server busy (503, with ``Retry-After``)."""

    error: str
    detail: str


# The error answers every church endpoint may give, and those of the provider callbacks: the
# app's (400 only for what the schema refuses, 404 and 409 by what is stored, 422 as above) and
# the edge's.
_EDGE_ERRORS = {413: ErrorOut | EdgeErrorOut, 429: EdgeErrorOut, 503: EdgeErrorOut}
ERRORS = {400: ErrorOut, 401: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut, **_EDGE_ERRORS}
WEBHOOK_ERRORS = {400: ErrorOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut, **_EDGE_ERRORS}


def page(items: list[Contact] | list[RecurringMessage], limit: int) -> dict[str, object]:
    """One page of a keyset listing; the selector was asked for ``limit + 1`` rows to see if more follow."""
    shown = items[:limit]
    return {"items": shown, "next_after": shown[-1].id if len(items) > limit else None}
