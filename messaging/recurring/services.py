"""Writes of recurring messages: schedules read in the church's time zone, and each occurrence's
messages queued once per audience member, in batches a job commits behind its lock's fence.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from croniter import CroniterError, croniter
from django.db import connections, transaction
from django.utils import timezone

from config.databases import PRIMARY_DB_ALIAS
from messaging.errors import NotFound, Unprocessable
from messaging.models import Church, ContactGroup, Message, RecurringMessage
from messaging.recurring import selectors
from messaging.sending.services import message_body_check, messages_enqueue

Batch = Callable[[], AbstractContextManager[Counter[str]]]


@contextmanager
def primary_batch() -> Iterator[Counter[str]]:
    """A plain transaction on the primary, yielding a counter: the default ``batch`` of the
    services a job also runs behind its fence (``JobContext.fenced`` has the same shape)."""
    with transaction.atomic(using=PRIMARY_DB_ALIAS):
        yield Counter()


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
    message_body_check(body=body)
    cron = " ".join(cron.split())
    if not croniter.is_valid(cron) or len(cron.split()) != 5:
        raise Unprocessable(f"'{cron}' is not a five-field cron expression", field="cron")
    try:
        first_run = recurring_message_next_run(
            cron=cron, time_zone=church.time_zone, after=now or timezone.now()
        )
    except (ValueError, KeyError, CroniterError) as error:  # e.g. "0 0 31 2 *" never runs
        raise Unprocessable(f"'{cron}' has no next run: {error}", field="cron") from None
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
