"""``/webhooks/sms/``: the SMS provider's signed callbacks (a contact's message, a delivery report)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar, cast

from django.http import HttpRequest
from ninja import Router
from ninja.errors import HttpError

from messaging.api.auth import WebhookSignature
from messaging.api.schemas import WEBHOOK_ERRORS, InboundSmsIn, SmsStatusIn, WebhookOut
from messaging.errors import MessagingError
from messaging.inbound import services
from messaging.models import Message

router = Router()

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
            services.webhook_delivery_release(signature=str(getattr(request, "auth", "")))
            raise

    return wrapper


def _webhook(path: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """A provider callback at ``path``: signed (``WebhookSignature``), answered with ``WebhookOut``
    or an error body, listed under "webhooks", and forgotten when we fail to handle it."""

    def declare(view: Callable[_P, _R]) -> Callable[_P, _R]:
        route = router.post(
            path, auth=WebhookSignature(), response={200: WebhookOut, **WEBHOOK_ERRORS}, tags=["webhooks"]
        )
        return route(_forget_signature_on_failure(view))

    return declare


@_webhook("/webhooks/sms/inbound")
def webhook_inbound(request: HttpRequest, payload: InboundSmsIn) -> dict[str, object]:
    """A contact's SMS to a church's linked number; a repeat of the same message id is a no-op."""
    message, created = services.inbound_message_receive(
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
    message, changed = services.message_status_update(
        provider_message_id=payload.message_id, status=status, error=payload.error
    )
    return {"message_id": message.id, "duplicate": not changed, "status": message.status}
