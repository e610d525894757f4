"""Writes of outbound messages: queue them (``message_send``), publish their tasks after the
commit (``messages_enqueue``), claim and hand each to the provider at most once
(``messages_deliver``, ADR 0011), and sweep what was left behind (``messages_requeue_stale``,
``messages_recover_stuck_sending``). Reads that decide a write run inside
``transaction.atomic()`` or ``using(PRIMARY_DB_ALIAS)`` so they go to the primary.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.db import IntegrityError, connections, transaction
from django.utils import timezone

from config.databases import PRIMARY_DB_ALIAS
from messaging.errors import Conflict, InvalidInput, NotFound
from messaging.events import MESSAGE_SENT, MESSAGE_STATUS, message_changed_on_commit
from messaging.gateway import GatewayError, OutboundSms, SmsGateway, get_gateway
from messaging.models import BODY_MAX_LENGTH, Church, Contact, IdempotentRequest, Message, PhoneLink

logger = logging.getLogger(__name__)

MAX_RECIPIENTS_PER_SEND = 1000
SEND_TASK_BATCH = 500  # messages per Celery task (a publish costs about 2 ms of the enqueuer's CPU)
# messaging.tasks.send_messages, named rather than imported: the task module calls these services.
SEND_TASK_NAME = "messaging.send_messages"
# A publish after the commit must not hold the request when the broker is down: no result-backend
# subscription (nothing reads the send's result; the message row is the record) and one quick
# retry instead of Celery's defaults, which kept a request waiting about 19 s per message. What
# fails stays ``queued`` for the messages-sweep job.
SEND_PUBLISH_OPTIONS = {
    "ignore_result": True,
    "retry_policy": {"max_retries": 1, "interval_start": 0.2, "interval_step": 0, "interval_max": 0.2},
}


def message_body_check(*, body: str) -> str:
    """``body`` when it can be sent as one message; otherwise InvalidInput naming the body."""
    if not body.strip():
        raise InvalidInput("the message body is empty", field="body")
    if len(body) > BODY_MAX_LENGTH:
        raise InvalidInput(
            f"the message body has {len(body)} characters; at most {BODY_MAX_LENGTH} are allowed",
            field="body",
        )
    return body


@dataclass(frozen=True)
class SendResult:
    messages: list[Message]
    replayed: bool  # True when an earlier request with the same Idempotency-Key is answered again


def message_send(
    *,
    church: Church,
    contact_ids: Sequence[int],
    body: str,
    idempotency_key: str | None = None,
) -> SendResult:
    """Queue one outbound message per contact and have them sent after the commit.

    With an ``idempotency_key`` a retried request creates nothing and gets the first
    request's messages back; the same key with a different request is a Conflict.
    """
    message_body_check(body=body)
    unique_ids = sorted(set(contact_ids))
    if not unique_ids:
        raise InvalidInput("name at least one contact", field="contact_ids")
    if len(unique_ids) > MAX_RECIPIENTS_PER_SEND:
        raise InvalidInput(f"at most {MAX_RECIPIENTS_PER_SEND} contacts per request", field="contact_ids")
    with transaction.atomic():
        if idempotency_key is not None:
            fingerprint = hashlib.sha256(
                json.dumps({"contact_ids": unique_ids, "body": body}).encode()
            ).hexdigest()
            record, claimed = _idempotent_request_claim(
                church=church, key=idempotency_key, fingerprint=fingerprint
            )
            if not claimed:
                if record.request_fingerprint != fingerprint:
                    raise Conflict(
                        "this Idempotency-Key was used for a different request", field="Idempotency-Key"
                    )
                replay = list(Message.objects.filter(church=church, id__in=record.message_ids).order_by("id"))
                return SendResult(messages=replay, replayed=True)
        contacts = list(Contact.objects.filter(church=church, id__in=unique_ids).order_by("id"))
        missing = sorted(set(unique_ids) - {contact.id for contact in contacts})
        if missing:
            raise NotFound(f"contact {missing[0]} not found", field="contact_ids")
        opted_out = [contact.id for contact in contacts if contact.opted_out]
        if opted_out:
            raise Conflict(f"contact {opted_out[0]} has opted out of messages", field="contact_ids")
        messages = Message.objects.bulk_create(
            [
                Message(
                    church=church,
                    contact=contact,
                    direction=Message.Direction.OUTBOUND,
                    body=body,
                    status=Message.Status.QUEUED,
                    idempotency_key=f"{idempotency_key}:{contact.id}" if idempotency_key else None,
                )
                for contact in contacts
            ]
        )
        if idempotency_key is not None:
            record.message_ids = [message.id for message in messages]
            record.save(update_fields=["message_ids"])
        messages_enqueue(message_ids=[message.id for message in messages])
    return SendResult(messages=messages, replayed=False)


def _idempotent_request_claim(
    *, church: Church, key: str, fingerprint: str
) -> tuple[IdempotentRequest, bool]:
    """Insert the key's row, or get the one a concurrent or earlier request inserted.

    A concurrent insert of the same key waits on the unique index until the first
    transaction ends, then fails here and reads the committed row.
    """
    try:
        with transaction.atomic():
            record = IdempotentRequest.objects.create(church=church, key=key, request_fingerprint=fingerprint)
        return record, True
    except IntegrityError:
        return IdempotentRequest.objects.get(church=church, key=key), False


def messages_enqueue(*, message_ids: Sequence[int]) -> None:
    """Send the messages from Celery workers once the current transaction commits.

    Everything one transaction enqueues goes out together after its commit, in tasks of
    ``SEND_TASK_BATCH`` (a recurring-messages transaction queues a dozen churches' messages:
    a dozen half-empty tasks would cost a dozen publishes). If the broker is down the messages
    stay ``queued`` (logged, not lost) for the messages-sweep job.
    """
    if not message_ids:
        return
    connection = transaction.get_connection(PRIMARY_DB_ALIAS)
    if connection.in_atomic_block:
        for entry in connection.run_on_commit:
            pending = getattr(entry[1], "__self__", None)
            if isinstance(pending, _PendingSends):
                pending.message_ids.extend(message_ids)
                return
    pending = _PendingSends(list(message_ids))
    transaction.on_commit(pending.publish, using=PRIMARY_DB_ALIAS, robust=True)


@dataclass
class _PendingSends:
    """The messages one transaction enqueued, published once it commits."""

    message_ids: list[int]

    def publish(self) -> None:
        send = current_app.signature(SEND_TASK_NAME, options=SEND_PUBLISH_OPTIONS)
        ids = self.message_ids
        for start in range(0, len(ids), SEND_TASK_BATCH):
            chunk = ids[start : start + SEND_TASK_BATCH]
            try:
                # A short repr for Celery's logs and monitors: its own walks every id of the list.
                shown = f"{{'message_ids': [{len(chunk)} ids, {chunk[0]}..{chunk[-1]}]}}"
                send.apply_async(kwargs={"message_ids": chunk}, kwargsrepr=shown)
            except Exception as error:  # the broker's errors are many kinds; all mean "not now"
                # One failed publish, not one per task: the rest waits for the sweep as well.
                logger.error(
                    "%d message(s) not enqueued, left queued for the messages-sweep job: %s",
                    len(ids) - start,
                    error,
                )
                return


def messages_requeue_stale(*, older_than: timedelta, limit: int = 1000) -> int:
    """Enqueue again outbound messages still ``queued`` after ``older_than`` (the broker was down
    at commit, a worker died before claiming them); returns how many. Delivery claims each one
    first, so a message enqueued twice is still sent at most once.
    """
    cutoff = timezone.now() - older_than
    with transaction.atomic():
        ids = list(
            Message.objects.filter(
                direction=Message.Direction.OUTBOUND, status=Message.Status.QUEUED, updated_at__lt=cutoff
            )
            .order_by("id")
            .values_list("id", flat=True)[:limit]
        )
        if ids:
            # Touched, so the next sweep waits another ``older_than`` before trying them again.
            Message.objects.filter(id__in=ids, status=Message.Status.QUEUED).update(updated_at=timezone.now())
            messages_enqueue(message_ids=ids)
    return len(ids)


@dataclass(frozen=True)
class StuckSendingResult:
    requeued: int  # tried again with the same idempotency key (the provider deduplicates)
    held_for_review: int  # the provider cannot deduplicate: never resent, a person decides


def messages_recover_stuck_sending(
    *, older_than: timedelta, gateway: SmsGateway | None = None, limit: int = 1000
) -> StuckSendingResult:
    """Messages claimed for sending ``older_than`` ago whose worker never recorded an answer.

    The provider may or may not have accepted them. With a provider that takes idempotency keys
    they go back to ``queued`` and are sent again under the same key (the provider answers the
    first send again); otherwise they become ``review``: never resent blindly (ADR 0011).
    """
    idempotent = (gateway or get_gateway()).supports_idempotency_key
    cutoff = timezone.now() - older_than
    with transaction.atomic():
        ids = list(
            Message.objects.select_for_update(skip_locked=True)
            .filter(
                direction=Message.Direction.OUTBOUND, status=Message.Status.SENDING, updated_at__lt=cutoff
            )
            .order_by("id")
            .values_list("id", flat=True)[:limit]
        )
        if not ids:
            return StuckSendingResult(requeued=0, held_for_review=0)
        stuck = Message.objects.filter(id__in=ids, status=Message.Status.SENDING)
        if idempotent:
            stuck.update(status=Message.Status.QUEUED, updated_at=timezone.now())
            messages_enqueue(message_ids=ids)
            return StuckSendingResult(requeued=len(ids), held_for_review=0)
        stuck.update(
            status=Message.Status.REVIEW,
            error="the sending worker stopped before the provider answered; it may have been sent: "
            "check the provider's log before sending it again",
            updated_at=timezone.now(),
        )
    logger.error("%d message(s) held for review: their worker stopped mid-send (ids %s)", len(ids), ids[:20])
    return StuckSendingResult(requeued=0, held_for_review=len(ids))


def _sending_number(*, church_id: int) -> str:
    link = (
        PhoneLink.objects.using(PRIMARY_DB_ALIAS)
        .filter(church_id=church_id, state=PhoneLink.State.LINKED)
        .order_by("id")
        .first()
    )
    return link.phone if link else settings.MESSAGING_SMS_DEFAULT_FROM


_CLAIM = (
    f"UPDATE {Message._meta.db_table} SET status = %s, claimed_at = now(), updated_at = now(),"
    " send_attempts = send_attempts + 1"
    " WHERE id = %s AND status = %s AND direction = %s RETURNING claimed_at, updated_at, send_attempts"
)
_CLAIMED_FIELDS = ("claimed_at", "updated_at", "send_attempts")


def message_claim(*, message_id: int) -> bool:
    """Move one queued outbound message to ``sending``, committed before anything is sent.

    One ``UPDATE ... WHERE status = 'queued'``: of two workers claiming it at once, one gets the
    row and the other nothing (the second waits on the row lock, then sees it is not queued).
    """
    return _message_claim(message_id=message_id) is not None


def _message_claim(*, message_id: int) -> dict[str, object] | None:
    """``message_claim``, returning the fields the claim set (None: not claimed).

    One statement in autocommit: it commits on its own, with no BEGIN and COMMIT round trips.
    """
    with connections[PRIMARY_DB_ALIAS].cursor() as cursor:
        cursor.execute(
            _CLAIM, [Message.Status.SENDING, message_id, Message.Status.QUEUED, Message.Direction.OUTBOUND]
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return {"status": Message.Status.SENDING, **dict(zip(_CLAIMED_FIELDS, row, strict=True))}


def message_idempotency_key(*, message_id: int) -> str:
    """What every send of one message carries, so a provider can tell a repeat."""
    return f"message-{message_id}"


def message_deliver(*, message_id: int, gateway: SmsGateway | None = None) -> Message | None:
    """Hand one queued message to the provider, at most once; see ``messages_deliver``.

    Returns the message as it ends (or as another worker left it), None if it does not exist.
    """
    delivered = messages_deliver(message_ids=[message_id], gateway=gateway)
    return delivered[0] if delivered else None


def messages_deliver(*, message_ids: Sequence[int], gateway: SmsGateway | None = None) -> list[Message]:
    """Hand queued messages to the provider, each at most once; each ends ``sent`` or ``failed``.

    Each message is claimed on its own just before its send (``queued`` to ``sending``,
    committed); only the worker that claimed it calls the provider, so a redelivered task or a
    second concurrent delivery sends nothing. A worker that dies after a claim leaves that one
    message ``sending``; the sweep (``messages_recover_stuck_sending``) decides what happens to
    it. The status never moves back except there. Claims stay one message each (not one per
    batch) so a worker that dies strands one message, not a task's hundred.

    The batch's rows, contacts and sending numbers are read once up front (a Sunday burst sends
    a million of these): per message, the claim, the provider and the final update. Returns the
    messages in the order given, as they ended or as another worker left them; ids that do not
    exist are left out.
    """
    gateway = gateway or get_gateway()
    primary = Message.objects.using(PRIMARY_DB_ALIAS)
    loaded = {message.pk: message for message in primary.select_related("contact").filter(pk__in=message_ids)}
    numbers: dict[int, str] = {}
    delivered: list[Message] = []
    for message_id in message_ids:
        message = loaded.get(message_id)
        if message is None:
            continue
        claimed = _message_claim(message_id=message_id)
        if claimed is None:
            current = primary.filter(pk=message_id).first()  # another worker's, or done already
            if current is not None:
                delivered.append(current)
            continue
        for name, value in claimed.items():
            setattr(message, name, value)
        if message.church_id not in numbers:
            numbers[message.church_id] = _sending_number(church_id=message.church_id)
        _message_send_claimed(message=message, from_number=numbers[message.church_id], gateway=gateway)
        delivered.append(message)
    return delivered


def _message_send_claimed(*, message: Message, from_number: str, gateway: SmsGateway) -> None:
    """Send a message this worker claimed; record how it ended, on the row and on ``message``."""
    ended: dict[str, object]
    if message.contact.opted_out:
        ended = {"status": Message.Status.FAILED, "error": "contact opted out"}
    else:
        sms = OutboundSms(
            to=message.contact.phone,
            from_number=from_number,
            body=message.body,
            idempotency_key=message_idempotency_key(message_id=message.pk),
        )
        try:
            provider_message_id = gateway.send(sms)
        except GatewayError as error:
            logger.warning("message %s failed: %s", message.pk, error)
            ended = {"status": Message.Status.FAILED, "error": str(error)[:2000]}
        else:
            ended = {"status": Message.Status.SENT, "provider_message_id": provider_message_id, "error": ""}
    ended["updated_at"] = timezone.now()
    if ended["status"] == Message.Status.SENT:
        ended["sent_at"] = ended["updated_at"]
    updated = (
        Message.objects.using(PRIMARY_DB_ALIAS)
        .filter(pk=message.pk, status=Message.Status.SENDING)
        .update(**ended)
    )
    for name, value in ended.items():  # the row as it now is, without reading it again
        setattr(message, name, value)
    if updated:  # announced once, by the claimer
        event = MESSAGE_SENT if message.status == Message.Status.SENT else MESSAGE_STATUS
        message_changed_on_commit(event=event, message=message, using=PRIMARY_DB_ALIAS)
    else:  # the sweep settled it meanwhile (it took longer than the stuck threshold)
        message.refresh_from_db(using=PRIMARY_DB_ALIAS)
