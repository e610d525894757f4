"""Demo data for local use and load tests: many rows, fast (``COPY`` in batches).

Numbers are deterministic and valid: contact ``i`` of every church is ``+1212`` followed by
``2000000 + i``; church ``c``'s linked sending number is ``+1646`` followed by ``2000000 + c``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connections, transaction
from django.db.models import Model
from django.utils import timezone

from messaging.contacts.services import staff_member_ensure
from messaging.models import Church, Contact, ContactGroup, Message, PhoneLink, RecurringMessage

BATCH_SIZE = 5000
COPY_BATCH_SIZE = 100_000
DATABASE = "default"  # the primary; COPY never goes to a replica
TIME_ZONES = ["America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles", "Europe/London"]
BODIES = [
    "Service starts at 10am this Sunday. See you there!",
    "Reminder: youth group meets Friday at 7pm.",
    "Thank you for serving this week!",
    "Prayer meeting tonight at 6:30pm in the chapel.",
]

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class SeedResult:
    churches: int
    contacts: int
    messages: int


def _ids_reserve(model: type[Model], count: int) -> int:
    """Take ``count`` consecutive ids from ``model``'s id sequence and return the first.

    The table lock keeps other inserts from drawing an id from the middle of the range between
    ``nextval`` and ``setval`` (an INSERT takes its table lock before it evaluates its default).
    The sequence ends past the range, so later inserts through the ORM never collide with it.
    """
    table = model._meta.db_table
    with transaction.atomic(using=DATABASE), connections[DATABASE].cursor() as cursor:
        cursor.execute(f'LOCK TABLE "{table}" IN SHARE ROW EXCLUSIVE MODE')
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
        sequence = cursor.fetchone()[0]
        cursor.execute("SELECT setval(%s, nextval(%s) + %s - 1)", [sequence, sequence, count])
        last = cursor.fetchone()[0]
    return int(last) - count + 1


def _copy(table: str, columns: Sequence[str], lines: Iterable[str]) -> None:
    """``COPY`` text-format lines into ``table`` in one transaction (PgBouncer runs in transaction
    mode: a COPY must not span two of them). Lines end with a newline and need no escaping."""
    sql = f'COPY "{table}" ({", ".join(columns)}) FROM STDIN'
    with (
        transaction.atomic(using=DATABASE),
        connections[DATABASE].cursor() as cursor,
        cursor.cursor.copy(sql) as copy,
    ):
        copy.write("".join(lines))


def demo_data_seed(
    *, churches: int, contacts: int, messages: int, progress: Progress | None = None, seed: int = 42
) -> SeedResult:
    """Create ``churches`` churches and spread ``contacts`` contacts and ``messages`` messages
    over them (totals, round-robin). The demo staff user belongs to the first new church.

    Contacts and messages go in with ``COPY`` on the primary, one transaction per batch of
    ``COPY_BATCH_SIZE`` rows. ``progress`` is called after each batch with the kind of row, how
    many of them are written so far, and how many in all.
    """
    if churches < 1 and (contacts or messages):
        raise ValueError("contacts and messages need at least one church")
    report = progress or (lambda _kind, _done, _total: None)
    rng = random.Random(seed)  # noqa: S311 (demo data, not secrets)
    now = timezone.now()
    with transaction.atomic(using=DATABASE):
        first_number = (PhoneLink.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1
        new_churches = Church.objects.bulk_create(
            [
                Church(
                    name=f"Demo church {first_number + index}", time_zone=TIME_ZONES[index % len(TIME_ZONES)]
                )
                for index in range(churches)
            ],
            batch_size=BATCH_SIZE,
        )
        PhoneLink.objects.bulk_create(
            [
                PhoneLink(
                    church=church,
                    phone=f"+1646{2000000 + first_number + index:07d}",
                    state=PhoneLink.State.LINKED,
                    attempts=1,
                    last_attempt_at=now,
                )
                for index, church in enumerate(new_churches)
            ],
            batch_size=BATCH_SIZE,
        )
        groups = ContactGroup.objects.bulk_create(
            [ContactGroup(church=church, name="members") for church in new_churches], batch_size=BATCH_SIZE
        )
        RecurringMessage.objects.bulk_create(
            [
                RecurringMessage(church=church, body=BODIES[0], cron="0 9 * * 0", group=group, active=False)
                for church, group in zip(new_churches, groups, strict=True)
            ],
            batch_size=BATCH_SIZE,
        )
    report("churches", len(new_churches), churches)
    if contacts:
        # Contact ``i`` belongs to church ``i % churches`` and gets id ``first_contact + i``, so a
        # message can pick a contact of its church without reading the ids back.
        first_contact = _ids_reserve(Contact, contacts)
        created = now.isoformat()
        for start in range(0, contacts, COPY_BATCH_SIZE):
            stop = min(contacts, start + COPY_BATCH_SIZE)
            _copy(
                Contact._meta.db_table,
                ["id", "church_id", "phone", "name", "opted_out", "created_at"],
                (
                    f"{first_contact + index}\t{new_churches[index % churches].id}"
                    f"\t+1212{2000000 + index // churches:07d}\tMember {index}"
                    f"\t{'t' if rng.random() < 0.02 else 'f'}\t{created}\n"
                    for index in range(start, stop)
                ),
            )
            report("contacts", stop, contacts)
    if messages:
        if not contacts:
            raise ValueError("messages need at least one contact")
        with_contacts = min(churches, contacts)  # churches 0 .. with_contacts - 1 have contacts
        per_church = [contacts // churches + (index < contacts % churches) for index in range(with_contacts)]
        church_ids = [church.id for church in new_churches[:with_contacts]]
        # One text per minute of the last 30 days: formatting a datetime per row costs more than the COPY.
        sent_times = [(now - timedelta(minutes=minute)).isoformat() for minute in range(60 * 24 * 30 + 1)]
        created = now.isoformat()
        statuses = [Message.Status.DELIVERED] * 8 + [Message.Status.SENT, Message.Status.FAILED]
        outbound = [f"outbound\t{body}\t{status}" for body in BODIES for status in statuses]
        inbound = [f"inbound\t{body}\t{Message.Status.DELIVERED}" for body in BODIES]
        tail = f"\t\t{created}\t{created}\t"
        for start in range(0, messages, COPY_BATCH_SIZE):
            stop = min(messages, start + COPY_BATCH_SIZE)
            lines = []
            for index in range(start, stop):
                church_index = index % with_contacts
                contact_id = first_contact + rng.randrange(per_church[church_index]) * churches + church_index
                kind = rng.choice(inbound) if rng.random() < 0.1 else rng.choice(outbound)
                lines.append(
                    f"{church_ids[church_index]}\t{contact_id}\t{kind}{tail}{rng.choice(sent_times)}\n"
                )
            _copy(
                Message._meta.db_table,
                [
                    "church_id",
                    "contact_id",
                    "direction",
                    "body",
                    "status",
                    "error",
                    "created_at",
                    "updated_at",
                    "sent_at",
                ],
                lines,
            )
            report("messages", stop, messages)
    if contacts or messages:
        # Fresh statistics at once: the planner must not judge millions of rows by the old ones.
        with connections[DATABASE].cursor() as cursor:
            cursor.execute(f'ANALYZE "{Contact._meta.db_table}", "{Message._meta.db_table}"')
    if (
        new_churches
        and not get_user_model().objects.filter(username=settings.MESSAGING_DEMO_USERNAME).exists()
    ):
        staff_member_ensure(
            church_name=new_churches[0].name,
            username=settings.MESSAGING_DEMO_USERNAME,
            password=settings.MESSAGING_DEMO_PASSWORD,
        )
    return SeedResult(churches=len(new_churches), contacts=contacts, messages=messages)
