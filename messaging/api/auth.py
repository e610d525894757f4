"""Who may call: church staff with a bearer token, and the SMS provider with a signed callback.

Both run before the view (and before the body is parsed); what they accept becomes
``request.auth``: the staff member, or the callback's accepted signature.
"""

from __future__ import annotations

from typing import Any, cast

from django.http import HttpRequest
from ninja.security import APIKeyHeader, HttpBearer

from config.bearer import bearer_token
from messaging.inbound import services as inbound
from messaging.inbound.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, webhook_verify
from messaging.models import Church, StaffMember
from messaging.tokens.selectors import staff_member_for_token


class BearerToken(HttpBearer):
    """``Authorization: Bearer <token>`` of a live token, read by the project's one parser
    (``config/bearer.py``); the staff member it belongs to becomes ``request.auth``."""

    def __call__(self, request: HttpRequest) -> StaffMember | None:
        token = bearer_token(request.headers.get(self.header))
        return None if token is None else self.authenticate(request, token)

    def authenticate(self, request: HttpRequest, token: str) -> StaffMember | None:
        return staff_member_for_token(raw_token=token)


class SignatureRefused(Exception):
    def __init__(self, detail: str, field: str) -> None:
        super().__init__(detail)
        self.detail, self.field = detail, field


class WebhookSignature(APIKeyHeader):
    """Provider callbacks: the HMAC of timestamp and raw body, checked before the body is parsed.

    A stale timestamp, a wrong signature and a signature already accepted (a replay) are all
    403 (messaging/inbound/webhooks.py). The accepted signature becomes ``request.auth``.
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


def request_staff(request: HttpRequest) -> StaffMember:
    """The staff member ``BearerToken`` accepted for this request."""
    staff: Any = getattr(request, "auth")  # noqa: B009 (set by ninja's auth)
    return cast(StaffMember, staff)


def request_church(request: HttpRequest) -> Church:
    """The church every ``/api/`` view serves: the token holder's."""
    return request_staff(request).church
