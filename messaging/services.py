"""Writes. Reads that decide a write run inside ``transaction.atomic()`` so they go to the primary."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import phonenumbers
from celery import current_app
from croniter import CroniterError, croniter
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import IntegrityError, connections, transaction
from django.db.models import prefetch_related_objects
from django.utils import timezone

from messaging import selectors, tokens
from messaging.errors import Conflict, InvalidInput, NotFound
from messaging.events import (
    MESSAGE_INBOUND,
    MESSAGE_SENT,
    MESSAGE_STATUS,
    message_changed_on_commit,
)
from messaging.gateway import GatewayError, OutboundSms, SmsGateway, get_gateway
from messaging.models import (
    BODY_MAX_LENGTH,
    ApiToken,
    Church,
    Contact,
    ContactGroup,
    IdempotentRequest,
    Message,
    PhoneLink,
    RecurringMessage,
    StaffMember,
    validate_time_zone,
)
from replicas import PRIMARY_DB_ALIAS

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
OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP"})
WEBHOOK_SEEN_PREFIX = "webhook-seen:"
STATUS_RANK = {
    Message.Status.QUEUED: 0,
    Message.Status.SENDING: 0,
    Message.Status.REVIEW: 0,
    Message.Status.SENT: 1,
    Message.Status.DELIVERED: 2,
    Message.Status.FAILED: 2,
}


Batch = Callable[[], AbstractContextManager[Counter[str]]]


@contextmanager
def primary_batch() -> Iterator[Counter[str]]:
    """A plain transaction on the primary, yielding a counter: the default ``batch`` of the
    services a job also runs behind its fence (``JobContext.fenced`` has the same shape)."""
    with transaction.atomic(using=PRIMARY_DB_ALIAS):
        yield Counter()


# --- phone numbers and bodies ---------------------------------------------------------------


def phone_normalize(*, phone: str, field: str = "phone") -> str:
    """E.164 form of a valid number (``+12025550123``); anything else is InvalidInput."""
    try:
        parsed = phonenumbers.parse(phone, settings.MESSAGING_DEFAULT_PHONE_REGION)
    except phonenumbers.NumberParseException as error:
        raise InvalidInput(f"'{phone}' is not a phone number: {error}", field=field) from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidInput(f"'{phone}' is not a valid phone number", field=field)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _body_check(body: str) -> str:
    if not body.strip():
        raise InvalidInput("the message body is empty", field="body")
    if len(body) > BODY_MAX_LENGTH:
        raise InvalidInput(
            f"the message body has {len(body)} characters; at most {BODY_MAX_LENGTH} are allowed",
            field="body",
        )
    return body


# --- churches, staff, tokens ----------------------------------------------------------------


def church_create(*, name: str, time_zone: str = "UTC") -> Church:
    try:
        validate_time_zone(time_zone)
    except Exception:
        raise InvalidInput(f"'{time_zone}' is not an IANA time zone name", field="time_zone") from None
    return Church.objects.create(name=name, time_zone=time_zone)


def staff_member_ensure(
    *, church_name: str, username: str, password: str, time_zone: str = "UTC"
) -> StaffMember:
    """The user ``username`` on the staff of the church named ``church_name``, created if missing.

    Safe to run again: the password is set to ``password`` each time.
    """
    user_model = get_user_model()
    with transaction.atomic():
        church = Church.objects.filter(name=church_name).order_by("id").first()
        if church is None:
            church = church_create(name=church_name, time_zone=time_zone)
        user, _ = user_model.objects.get_or_create(username=username)
        user.set_password(password)
        user.save()
        staff_member, _ = StaffMember.objects.get_or_create(user=user, defaults={"church": church})
        if staff_member.church_id != church.id:
            staff_member.church = church
            staff_member.save(update_fields=["church"])
    return staff_member


def api_token_create(*, user: User) -> str:
    """A new bearer token for ``user``; only its hash is stored, the raw value is returned once."""
    raw_token = secrets.token_urlsafe(32)
    ApiToken.objects.create(
        user=user,
        key_hash=selectors.api_token_hash(raw_token=raw_token),
        expires_at=timezone.now() + timedelta(hours=settings.MESSAGING_API_TOKEN_TTL_HOURS),
    )
    return raw_token


def api_token_revoke(*, raw_token: str) -> None:
    """Delete the token, then tell every server (their cached copies go before the next request).

    Raises ``tokens.RevocationNotPublished`` when the other servers could not be told; the
    token is deleted all the same and a retry publishes again.
    """
    ApiToken.objects.filter(key_hash=selectors.api_token_hash(raw_token=raw_token)).delete()
    tokens.token_cache.bump()


def api_tokens_purge_expired(*, now: datetime | None = None) -> int:
    """Delete tokens expired by ``now`` (they already authenticate nobody); returns how many.
    The retention job calls it with ``now`` set back by the retention setting."""
    deleted, _ = (
        ApiToken.objects.using(PRIMARY_DB_ALIAS).filter(expires_at__lte=now or timezone.now()).delete()
    )
    return deleted


# --- contacts -------------------------------------------------------------------------------


def contact_create(*, church: Church, phone: str, name: str = "", groups: Iterable[str] = ()) -> Contact:
    normalized = phone_normalize(phone=phone)
    group_names = sorted({group.strip() for group in groups if group.strip()})
    try:
        with transaction.atomic():
            contact = Contact.objects.create(church=church, phone=normalized, name=name)
            if group_names:
                contact.groups.set(_groups_ensure(church=church, names=group_names))
            # Loaded here, on the primary: a replica may not have the new rows yet.
            prefetch_related_objects([contact], "groups")
    except IntegrityError:
        raise Conflict(f"a contact with phone {normalized} already exists", field="phone") from None
    return contact


def _groups_ensure(*, church: Church, names: Sequence[str]) -> list[ContactGroup]:
    ContactGroup.objects.bulk_create(
        [ContactGroup(church=church, name=name) for name in names], ignore_conflicts=True
    )
    return list(ContactGroup.objects.filter(church=church, name__in=names))


# --- sending --------------------------------------------------------------------------------


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
    _body_check(body)
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
            raise InvalidInput(f"contact {opted_out[0]} has opted out of messages", field="contact_ids")
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


# --- recurring messages ---------------------------------------------------------------------


def recurring_message_next_run(*, cron: str, time_zone: str, after: datetime) -> datetime:
    """The first occurrence of ``cron`` strictly after ``after``, as an aware UTC datetime.

    The cron expression is read as wall-clock time in ``time_zone``: "0 9 * * *" is 9:00 local
    every day, 13:00 UTC in New York summer time and 14:00 UTC in winter. A wall-clock time
    that does not exist (spring forward) runs at the same offset as before the jump, i.e. an
    hour later; one that happens twice (fall back) runs once, the first time.
    """
    if after.tzinfo is None:
        raise ValueError("after must be an aware datetime")
    zone = ZoneInfo(time_zone)
    # Iterate in naive local wall time, where croniter has no DST arithmetic to get wrong.
    iterator = croniter(cron, after.astimezone(zone).replace(tzinfo=None))
    for _ in range(1000):  # a fall-back hour can yield a few local times that are not after `after`
        local: datetime = iterator.get_next(datetime)
        candidate = local.replace(tzinfo=zone).astimezone(UTC)
        if candidate > after:
            return candidate
    raise ValueError(f"no occurrence of '{cron}' after {after.isoformat()}")


def recurring_message_create(
    *,
    church: Church,
    body: str,
    cron: str,
    group_name: str | None = None,
    active: bool = True,
    now: datetime | None = None,
) -> RecurringMessage:
    _body_check(body)
    cron = " ".join(cron.split())
    if not croniter.is_valid(cron) or len(cron.split()) != 5:
        raise InvalidInput(f"'{cron}' is not a five-field cron expression", field="cron")
    try:
        first_run = recurring_message_next_run(
            cron=cron, time_zone=church.time_zone, after=now or timezone.now()
        )
    except (ValueError, KeyError, CroniterError) as error:  # e.g. "0 0 31 2 *" never runs
        raise InvalidInput(f"'{cron}' has no next run: {error}", field="cron") from None
    next_run_at = first_run if active else None
    with transaction.atomic():  # the group may have been created a moment ago: ask the primary
        group = None
        if group_name is not None:
            group = ContactGroup.objects.filter(church=church, name=group_name).first()
            if group is None:
                raise NotFound(f"group '{group_name}' not found", field="group")
        return RecurringMessage.objects.create(
            church=church, body=body, cron=cron, group=group, active=active, next_run_at=next_run_at
        )


def recurring_message_set_active(
    *, church: Church, recurring_message_id: int, active: bool, now: datetime | None = None
) -> RecurringMessage:
    """Pause (no next run) or resume (next run computed from now: missed runs are not sent)."""
    with transaction.atomic():
        recurring_message = (
            RecurringMessage.objects.select_for_update(of=("self",))
            .filter(church=church, id=recurring_message_id)
            .select_related("church", "group")
            .first()
        )
        if recurring_message is None:
            raise NotFound(
                f"recurring message {recurring_message_id} not found", field="recurring_message_id"
            )
        if recurring_message.active != active:
            recurring_message.active = active
            recurring_message.next_run_at = (
                recurring_message_next_run(
                    cron=recurring_message.cron, time_zone=church.time_zone, after=now or timezone.now()
                )
                if active
                else None
            )
            recurring_message.save(update_fields=["active", "next_run_at", "updated_at"])
    return recurring_message


def recurring_message_advance(
    *, recurring_message: RecurringMessage, after: datetime, batch: Batch | None = None
) -> bool:
    """Move ``next_run_at`` to the first occurrence after ``after`` (usually the one just sent).

    Only from the value this caller read, and only while the schedule is active: a second or
    stale run moves nothing. ``batch`` is the transaction to write in (a job's ``ctx.fenced``);
    by default a plain one on the primary. Returns whether the row moved; the instance's
    ``next_run_at`` is set either way, so a caller walking the schedule goes on from there.
    """
    following = recurring_message_next_run(
        cron=recurring_message.cron, time_zone=recurring_message.church.time_zone, after=after
    )
    with (batch or primary_batch)():
        moved = (
            RecurringMessage.objects.using(PRIMARY_DB_ALIAS)
            .filter(pk=recurring_message.pk, active=True, next_run_at=recurring_message.next_run_at)
            .update(next_run_at=following, updated_at=timezone.now())
        )
    recurring_message.next_run_at = following
    return bool(moved)


@dataclass(frozen=True)
class OccurrenceResult:
    created: int  # messages queued by this call
    existing: int  # audience members who already had this occurrence's message


_OCCURRENCE_INSERT = (
    f"INSERT INTO {Message._meta.db_table} (church_id, contact_id, direction, body, status, error,"
    " recurring_message_id, occurrence, created_at, updated_at)"
    " SELECT %s, contact_id, %s, %s, %s, '', %s, %s, now(), now()"
    " FROM unnest(%s::bigint[]) AS contact_id"
    " ON CONFLICT DO NOTHING RETURNING id"
)


def recurring_message_insert_batch(
    *, recurring_message: RecurringMessage, occurrence: datetime, contact_ids: list[int]
) -> list[int]:
    """Queue one occurrence's message for each of ``contact_ids``; return the ids it created.

    ``INSERT ... ON CONFLICT DO NOTHING`` on the (recurring message, occurrence, contact)
    constraint makes a re-run add only what is missing. The caller owns the transaction (the
    jobs commit each batch behind a lock's fence); new messages are enqueued on its commit.
    """
    with connections[PRIMARY_DB_ALIAS].cursor() as cursor:
        cursor.execute(
            _OCCURRENCE_INSERT,
            [
                recurring_message.church_id,
                Message.Direction.OUTBOUND,
                recurring_message.body,
                Message.Status.QUEUED,
                recurring_message.pk,
                occurrence,
                contact_ids,
            ],
        )
        new_ids = [row[0] for row in cursor.fetchall()]
    messages_enqueue(message_ids=new_ids)
    return new_ids


def recurring_message_occurrence_create(
    *,
    recurring_message: RecurringMessage,
    occurrence: datetime,
    batch_size: int = 1000,
    batch: Batch | None = None,
) -> OccurrenceResult:
    """Queue one outbound message per audience member for one occurrence, in batches.

    Each batch of contacts is one transaction: ``batch()`` (a job's ``ctx.fenced``, so it
    commits only while the job's lock is the newest; its counter gets ``messages_created`` and
    ``messages_existing``), by default a plain one on the primary. A re-run after a crash, or a
    run by a second server, adds only what is missing (``recurring_message_insert_batch``).
    """
    if occurrence.tzinfo is None:
        raise ValueError("occurrence must be an aware datetime")
    audience = selectors.recurring_message_audience(recurring_message=recurring_message).using(
        PRIMARY_DB_ALIAS
    )
    created = existing = 0
    last_contact_id = 0
    while True:
        with (batch or primary_batch)() as counts:
            contact_ids = list(
                audience.filter(id__gt=last_contact_id)
                .order_by("id")
                .values_list("id", flat=True)[:batch_size]
            )
            if contact_ids:
                new_ids = recurring_message_insert_batch(
                    recurring_message=recurring_message, occurrence=occurrence, contact_ids=contact_ids
                )
                counts["messages_created"] += len(new_ids)
                counts["messages_existing"] += len(contact_ids) - len(new_ids)
                created += len(new_ids)
                existing += len(contact_ids) - len(new_ids)
        if len(contact_ids) < batch_size:  # the last (or an empty) batch: the audience is done
            return OccurrenceResult(created=created, existing=existing)
        last_contact_id = contact_ids[-1]


# --- provider callbacks ---------------------------------------------------------------------


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

    Kept in the cache (Redis) for twice the allowed clock skew: a signature stops verifying
    once its timestamp is more than the skew away, so nothing older needs remembering. An
    unreachable cache raises, and the provider retries later: a replay is never let through.
    """
    ttl = int(2 * settings.MESSAGING_WEBHOOK_MAX_SKEW_SECONDS) + 1
    return bool(cache.add(f"{WEBHOOK_SEEN_PREFIX}{signature}", 1, timeout=ttl))


def webhook_delivery_release(*, signature: str) -> None:
    """Forget a claimed signature whose handling failed, so the provider's retry of it is served."""
    cache.delete(f"{WEBHOOK_SEEN_PREFIX}{signature}")


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
