"""Writes of what reaches a church from outside: messages its contacts send, the provider's
delivery reports (both signed callbacks, ``messaging/inbound/webhooks.py``), and the church's
own numbers linked at the provider (phone links).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from config.databases import PRIMARY_DB_ALIAS
from messaging.contacts.services import phone_normalize
from messaging.errors import Conflict, InvalidInput, NotFound
from messaging.events import MESSAGE_INBOUND, MESSAGE_STATUS, message_changed_on_commit
from messaging.gateway import GatewayError, OutboundSms, SmsGateway
from messaging.models import BODY_MAX_LENGTH, Church, Contact, Message, PhoneLink, WebhookDelivery

OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP"})
STATUS_RANK = {
    Message.Status.QUEUED: 0,
    Message.Status.SENDING: 0,
    Message.Status.REVIEW: 0,
    Message.Status.SENT: 1,
    Message.Status.DELIVERED: 2,
    Message.Status.FAILED: 2,
}


def inbound_message_receive(
    *, provider_message_id: str, from_phone: str, to_phone: str, body: str
) -> tuple[Message, bool]:
    """Store a message a contact sent to a church's linked number; returns (message, created).

    The provider may call more than once: the provider message id makes a repeat a no-op.
    STOP-like words opt the contact out, START opts them back in.
    """
    sender = phone_normalize(phone=from_phone, field="from")
    receiver = phone_normalize(phone=to_phone, field="to")
    if len(body) > BODY_MAX_LENGTH:  # an empty body is fine: a picture message has none
        raise InvalidInput(f"the message body is over {BODY_MAX_LENGTH} characters", field="body")
    with transaction.atomic():
        existing = Message.objects.filter(provider_message_id=provider_message_id).first()
        if existing is not None:
            return existing, False
        link = PhoneLink.objects.filter(phone=receiver, state=PhoneLink.State.LINKED).first()
        if link is None:
            raise NotFound(f"{receiver} is not linked to any church", field="to")
        contact, _ = Contact.objects.get_or_create(church_id=link.church_id, phone=sender)
        keyword = body.strip().upper()
        if keyword in OPT_OUT_WORDS or keyword in OPT_IN_WORDS:
            contact.opted_out = keyword in OPT_OUT_WORDS
            contact.save(update_fields=["opted_out"])
        try:
            with transaction.atomic():
                message = Message.objects.create(
                    church_id=link.church_id,
                    contact=contact,
                    direction=Message.Direction.INBOUND,
                    body=body,
                    status=Message.Status.DELIVERED,
                    provider_message_id=provider_message_id,
                )
        except IntegrityError:
            return Message.objects.get(provider_message_id=provider_message_id), False
        message_changed_on_commit(event=MESSAGE_INBOUND, message=message)
    return message, True


def message_status_update(*, provider_message_id: str, status: str, error: str = "") -> tuple[Message, bool]:
    """Apply a provider's delivery report; returns (message, changed).

    The status only moves forward (queued, sent, delivered or failed), so a repeated or
    late report changes nothing.
    """
    if status not in {Message.Status.SENT, Message.Status.DELIVERED, Message.Status.FAILED}:
        raise InvalidInput(f"'{status}' is not one of sent, delivered, failed", field="status")
    with transaction.atomic():
        message = (
            Message.objects.select_for_update()
            .filter(provider_message_id=provider_message_id, direction=Message.Direction.OUTBOUND)
            .first()
        )
        if message is None:
            raise NotFound(f"no outbound message {provider_message_id}", field="message_id")
        changed = STATUS_RANK[Message.Status(status)] > STATUS_RANK[Message.Status(message.status)]
        if changed:
            message.status = status
            message.error = error[:2000] if status == Message.Status.FAILED else message.error
            message.save(update_fields=["status", "error", "updated_at"])
            message_changed_on_commit(event=MESSAGE_STATUS, message=message)
    return message, changed


def webhook_delivery_claim(*, signature: str) -> bool:
    """Remember an accepted callback signature; False if it was already accepted (a replay).

    A row on the primary (synchronously replicated), kept for twice the allowed clock skew: a
    signature stops verifying once its timestamp is more than the skew away, so nothing older
    needs remembering; expired rows go as new ones come. An unreachable database raises, and
    the provider retries later: a replay is never let through (ADR 0019).
    """
    now = timezone.now()
    ttl = timedelta(seconds=2 * settings.MESSAGING_WEBHOOK_MAX_SKEW_SECONDS + 1)
    with transaction.atomic(using=PRIMARY_DB_ALIAS):
        WebhookDelivery.objects.using(PRIMARY_DB_ALIAS).filter(expires_at__lt=now).delete()
        _, created = WebhookDelivery.objects.using(PRIMARY_DB_ALIAS).get_or_create(
            signature=signature, defaults={"expires_at": now + ttl}
        )
    return created


def webhook_delivery_release(*, signature: str) -> None:
    """Forget a claimed signature whose handling failed, so the provider's retry of it is served."""
    WebhookDelivery.objects.using(PRIMARY_DB_ALIAS).filter(signature=signature).delete()


# --- phone links ----------------------------------------------------------------------------


def phone_link_create(*, church: Church, phone: str) -> PhoneLink:
    normalized = phone_normalize(phone=phone)
    try:
        with transaction.atomic():
            return PhoneLink.objects.create(church=church, phone=normalized)
    except IntegrityError:
        raise Conflict(f"{normalized} is already linked or being linked", field="phone") from None


def phone_link_attempt(*, gateway: SmsGateway, phone: str) -> str | None:
    """Try to link ``phone`` at the provider; the error text, or ``None`` when linked.

    A gateway with a ``link_number(phone)`` operation is asked to link it; otherwise the
    number is verified by sending it a message through the gateway.
    """
    link_number = getattr(gateway, "link_number", None)
    try:
        if callable(link_number):
            link_number(phone)
        else:
            gateway.send(
                OutboundSms(
                    to=phone,
                    from_number=settings.MESSAGING_SMS_DEFAULT_FROM,
                    body="This number is being linked to your church's messaging account.",
                )
            )
    except GatewayError as exc:
        return str(exc) or type(exc).__name__
    return None


def phone_link_record_attempt(
    *, phone_link: PhoneLink, error: str | None, max_attempts: int
) -> PhoneLink.State | None:
    """Record one linking attempt of a pending link: no error means ``linked``; an error leaves
    it ``pending`` for another try, or ``failed`` once it has had ``max_attempts``.

    Written only if the link is still as the caller read it (pending, same attempt count), so
    a second or stale run changes nothing. Returns the new state, or ``None`` when the link
    changed meanwhile. The caller owns the transaction (the recovery job writes behind its fence).
    """
    attempts = phone_link.attempts + 1
    if error is None:
        state = PhoneLink.State.LINKED
    elif attempts >= max_attempts:
        state = PhoneLink.State.FAILED
    else:
        state = PhoneLink.State.PENDING
    updated = (
        PhoneLink.objects.using(PRIMARY_DB_ALIAS)
        .filter(pk=phone_link.pk, state=PhoneLink.State.PENDING, attempts=phone_link.attempts)
        .update(state=state, attempts=attempts, last_attempt_at=timezone.now(), last_error=error or "")
    )
    return state if updated else None
