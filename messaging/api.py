"""The JSON API (django-ninja, see docs/adr/0002-api-framework.md): thin views over services.

Clients log in for a bearer token; every ``/api/`` view serves only the token holder's church.
Errors are JSON ``{"detail": ..., "field": ...}`` naming the input to fix; no client input
gets a 500.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal, ParamSpec, TypeVar, cast

from django.conf import settings
from django.contrib.auth import authenticate
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from ninja import Field, Header, NinjaAPI, Query, Schema, Status
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import APIKeyHeader, HttpBearer
from pydantic import AfterValidator

from logins.selectors import login_locked_seconds
from logins.services import login_failures_clear
from messaging.contacts import selectors as contact_selectors
from messaging.contacts import services as contacts
from messaging.errors import Conflict, InvalidInput, MessagingError, NotFound
from messaging.inbound import services as inbound
from messaging.inbound.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, webhook_verify
from messaging.models import BODY_MAX_LENGTH, Church, Contact, Message, RecurringMessage, StaffMember
from messaging.recurring import selectors as recurring_selectors
from messaging.recurring import services as recurring
from messaging.sending import selectors as sending_selectors
from messaging.sending import services as sending
from messaging.serializers import message_row_json
from messaging.tokens import selectors as token_selectors
from messaging.tokens import services as tokens
from messaging.tokens.cache import RevocationNotPublished

# --- authentication -------------------------------------------------------------------------


class BearerToken(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> StaffMember | None:
        return token_selectors.staff_member_for_token(raw_token=token)


class SignatureRefused(Exception):
    def __init__(self, detail: str, field: str) -> None:
        super().__init__(detail)
        self.detail, self.field = detail, field


class WebhookSignature(APIKeyHeader):
    """Provider callbacks: the HMAC of timestamp and raw body, checked before the body is parsed.

    A stale timestamp, a wrong signature and a signature already accepted (a replay) are all
    403 (messaging/webhooks.py). The accepted signature becomes ``request.auth``.
    """

    param_name = SIGNATURE_HEADER

    def authenticate(self, request: HttpRequest, key: str | None) -> str:
        verdict = webhook_verify(
            body=request.body, signature=key, timestamp=request.headers.get(TIMESTAMP_HEADER)
        )
        if not verdict.ok:
            raise SignatureRefused(verdict.reason, verdict.field)
        if not inbound.webhook_delivery_claim(signature=verdict.signature):
            raise SignatureRefused("this signed callback was already received (a replay)", SIGNATURE_HEADER)
        return verdict.signature


class AccountLockedOut(Exception):
    def __init__(self, seconds: int) -> None:
        super().__init__(seconds)
        self.seconds = seconds


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _forget_signature_on_failure(view: Callable[_P, _R]) -> Callable[_P, _R]:
    """A callback we failed to handle (a 500) is forgotten, so the provider's retry is served.

    Answers about the callback itself (400, 404) stay: a retry would get the same answer.
    """

    @functools.wraps(view)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return view(*args, **kwargs)
        except (MessagingError, HttpError):
            raise
        except Exception:
            request = cast(HttpRequest, args[0])
            inbound.webhook_delivery_release(signature=str(getattr(request, "auth", "")))
            raise

    return wrapper


api = NinjaAPI(
    title="Church messaging API",
    version="1",
    description="Contacts, messages and recurring messages of one church; SMS provider callbacks.",
    urls_namespace="messaging-api",
    # The schema and its docs page describe every endpoint to whoever asks: served only where
    # MESSAGING_API_DOCS turns them on (local development), a 404 elsewhere.
    openapi_url="/api/openapi.json" if settings.MESSAGING_API_DOCS else None,
    docs_url="/api/docs",
    auth=BearerToken(),
)


def _staff(request: HttpRequest) -> StaffMember:
    return cast(StaffMember, getattr(request, "auth"))  # noqa: B009 (set by ninja's auth)


def _church(request: HttpRequest) -> Church:
    return _staff(request).church


# --- errors ---------------------------------------------------------------------------------


def _error(request: HttpRequest, status: int, detail: str, field: str | None) -> HttpResponse:
    return api.create_response(request, {"detail": detail, "field": field}, status=status)


_STATUS_OF = {InvalidInput: 400, NotFound: 404, Conflict: 409}
_LOCATIONS = {"body", "query", "header", "path", "payload", "filters"}


@api.exception_handler(MessagingError)
def _messaging_error(request: HttpRequest, exc: MessagingError) -> HttpResponse:
    return _error(request, _STATUS_OF.get(type(exc), 400), exc.message, exc.field)


@api.exception_handler(ValidationError)
def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = []
    for error in exc.errors:
        location = [part for part in error.get("loc", ()) if isinstance(part, str)]
        field = next((part for part in reversed(location) if part not in _LOCATIONS), "body")
        errors.append({"field": field, "message": str(error.get("msg", "invalid"))})
    first = errors[0] if errors else {"field": "body", "message": "invalid input"}
    return api.create_response(
        request,
        {"detail": f"{first['field']}: {first['message']}", "field": first["field"], "errors": errors},
        status=400,
    )


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    response = _error(request, 401, "a valid bearer token is required", "Authorization")
    response["WWW-Authenticate"] = "Bearer"
    return response


@api.exception_handler(SignatureRefused)
def _signature_refused(request: HttpRequest, exc: SignatureRefused) -> HttpResponse:
    return _error(request, 403, exc.detail, exc.field)


@api.exception_handler(AccountLockedOut)
def _locked_out(request: HttpRequest, exc: AccountLockedOut) -> HttpResponse:
    detail = f"too many failed logins for this account; retry in {exc.seconds} s"
    response = _error(request, 429, detail, "username")
    response["Retry-After"] = str(exc.seconds)
    return response


@api.exception_handler(RequestDataTooBig)
def _too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return _error(request, 413, "the request body is too large", "body")


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    detail = str(exc)
    field = "body" if detail.startswith("Cannot parse request body") else None
    return _error(request, exc.status_code, "the body is not valid JSON" if field else detail, field)


@api.exception_handler(RevocationNotPublished)
def _revocation_not_published(request: HttpRequest, exc: RevocationNotPublished) -> HttpResponse:
    # The token is deleted, but other servers may still hold a cached copy: ask for a retry.
    response = _error(request, 503, "the logout could not be confirmed on every server; retry", None)
    response["Retry-After"] = "1"
    return response


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _error(request, 404, "not found", None)


# --- schemas --------------------------------------------------------------------------------
# Bounds that keep every client value inside what PostgreSQL accepts (bigint ids, no NUL in
# text), so a strange input is a 400 and never a database error.

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


def _page(items: list[Contact] | list[Message] | list[RecurringMessage], limit: int) -> dict[str, object]:
    """One page of a keyset listing; the selector was asked for ``limit + 1`` rows to see if more follow."""
    page = items[:limit]
    return {"items": page, "next_after": page[-1].id if len(items) > limit else None}


_ERRORS = {400: ErrorOut, 401: ErrorOut, 404: ErrorOut, 409: ErrorOut, 413: ErrorOut}


def rows_json_response(data: dict[str, Any], status: int = 200) -> HttpResponse:
    """Plain JSON values (str, int, None, lists, dicts) as the API's JSON response."""
    return HttpResponse(json.dumps(data), status=status, content_type="application/json; charset=utf-8")


# --- auth -----------------------------------------------------------------------------------


@api.post(
    "/auth/login",
    auth=None,
    response={200: LoginOut, 400: ErrorOut, 401: ErrorOut, 429: ErrorOut},
    tags=["auth"],
)
def login(request: HttpRequest, payload: LoginIn) -> Status[dict[str, object]]:
    """Exchange a staff user's username and password for a bearer token.

    After too many failed logins the account is locked for a while (``logins``): 429 with
    ``Retry-After``, whatever the password.
    """
    locked = login_locked_seconds(username=payload.username)
    if locked:
        raise AccountLockedOut(locked)
    user = authenticate(request, username=payload.username, password=payload.password)
    staff = getattr(user, "staff", None) if user is not None else None
    if user is None or staff is None:
        return Status(
            401, {"detail": "wrong username or password, or not a church staff member", "field": "password"}
        )
    login_failures_clear(username=payload.username)
    token = tokens.api_token_create(user=user)
    return Status(200, {"token": token, "church": staff.church})


@api.post("/auth/logout", response={204: None, 401: ErrorOut, 503: ErrorOut}, tags=["auth"])
def logout(request: HttpRequest) -> Status[None]:
    """Revoke the bearer token the request was made with."""
    _, _, token = request.headers.get("Authorization", "").partition(" ")
    tokens.api_token_revoke(raw_token=token.strip())
    return Status(204, None)


# --- contacts -------------------------------------------------------------------------------


@api.get("/api/contacts", response={200: ContactPage, **_ERRORS}, tags=["contacts"])
def contacts_list(request: HttpRequest, filters: Query[PageFilters]) -> dict[str, object]:
    """The church's contacts, by id; pass the last id as ``after`` for the next page."""
    items = contact_selectors.contact_list(
        church=_church(request), after=filters.after, limit=filters.limit + 1
    )
    return _page(items, filters.limit)


@api.post("/api/contacts", response={201: ContactOut, **_ERRORS}, tags=["contacts"])
def contacts_create(request: HttpRequest, payload: ContactIn) -> Status[Contact]:
    """Add a contact; the phone number is stored in E.164 form, once per church."""
    contact = contacts.contact_create(
        church=_church(request), phone=payload.phone, name=payload.name, groups=payload.groups
    )
    return Status(201, contact)


@api.get("/api/contacts/{contact_id}", response={200: ContactOut, **_ERRORS}, tags=["contacts"])
def contacts_get(request: HttpRequest, contact_id: Id) -> Contact:
    return contact_selectors.contact_get(church=_church(request), contact_id=contact_id)


# --- messages -------------------------------------------------------------------------------


@api.get("/api/messages", response={200: MessagePage, **_ERRORS}, tags=["messages"])
def messages_list(request: HttpRequest, filters: Query[MessageFilters]) -> HttpResponse:
    """The church's messages by id (keyset pagination), optionally for one contact or direction."""
    rows = sending_selectors.message_list_rows(
        church=_church(request),
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


@api.post("/api/messages", response={201: MessagesSent, **_ERRORS}, tags=["messages"])
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
    result = sending.message_send(
        church=_church(request), contact_ids=contact_ids, body=payload.body, idempotency_key=idempotency_key
    )
    return Status(201, {"messages": result.messages, "replayed": result.replayed})


@api.get("/api/messages/{message_id}", response={200: MessageOut, **_ERRORS}, tags=["messages"])
def messages_get(request: HttpRequest, message_id: Id) -> Message:
    return sending_selectors.message_get(church=_church(request), message_id=message_id)


# --- recurring messages ---------------------------------------------------------------------


@api.get("/api/recurring-messages", response={200: RecurringMessagePage, **_ERRORS}, tags=["recurring"])
def recurring_messages_list(request: HttpRequest, filters: Query[PageFilters]) -> dict[str, object]:
    items = recurring_selectors.recurring_message_list(
        church=_church(request), after=filters.after, limit=filters.limit + 1
    )
    return _page(items, filters.limit)


@api.post("/api/recurring-messages", response={201: RecurringMessageOut, **_ERRORS}, tags=["recurring"])
def recurring_messages_create(request: HttpRequest, payload: RecurringMessageIn) -> Status[RecurringMessage]:
    """Schedule a message by cron expression, read in the church's time zone."""
    recurring_message = recurring.recurring_message_create(
        church=_church(request),
        body=payload.body,
        cron=payload.cron,
        group_name=payload.group,
        active=payload.active,
    )
    return Status(201, recurring_message)


@api.patch(
    "/api/recurring-messages/{recurring_message_id}",
    response={200: RecurringMessageOut, **_ERRORS},
    tags=["recurring"],
)
def recurring_messages_patch(
    request: HttpRequest, recurring_message_id: Id, payload: RecurringMessagePatch
) -> RecurringMessage:
    """Pause (``active: false``) or resume; a resumed schedule skips the runs it missed."""
    return recurring.recurring_message_set_active(
        church=_church(request), recurring_message_id=recurring_message_id, active=payload.active
    )


# --- provider webhooks ----------------------------------------------------------------------

_WEBHOOK_ERRORS = {400: ErrorOut, 403: ErrorOut, 404: ErrorOut, 413: ErrorOut}


def _webhook(path: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """A provider callback at ``path``: signed (``WebhookSignature``), answered with ``WebhookOut``
    or an error body, listed under "webhooks", and forgotten when we fail to handle it."""

    def declare(view: Callable[_P, _R]) -> Callable[_P, _R]:
        route = api.post(
            path, auth=WebhookSignature(), response={200: WebhookOut, **_WEBHOOK_ERRORS}, tags=["webhooks"]
        )
        return route(_forget_signature_on_failure(view))

    return declare


@_webhook("/webhooks/sms/inbound")
def webhook_inbound(request: HttpRequest, payload: InboundSmsIn) -> dict[str, object]:
    """A contact's SMS to a church's linked number; a repeat of the same message id is a no-op."""
    message, created = inbound.inbound_message_receive(
        provider_message_id=payload.message_id,
        from_phone=payload.from_,
        to_phone=payload.to,
        body=payload.body,
    )
    return {"message_id": message.id, "duplicate": not created, "status": message.status}


@_webhook("/webhooks/sms/status")
def webhook_status(request: HttpRequest, payload: SmsStatusIn) -> dict[str, object]:
    """A delivery report for a message we sent; the status only moves forward."""
    status = Message.Status.FAILED if payload.status == "undelivered" else payload.status
    message, changed = inbound.message_status_update(
        provider_message_id=payload.message_id, status=status, error=payload.error
    )
    return {"message_id": message.id, "duplicate": not changed, "status": message.status}
