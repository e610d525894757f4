"""Demo data for local use and load tests: many rows, fast (bulk inserts in batches).

Numbers are deterministic and valid: contact ``i`` of every church is ``+1212`` followed by
``2000000 + i``; church ``c``'s linked sending number is ``+1646`` followed by ``2000000 + c``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from messaging.models import Church, Contact, ContactGroup, Message, PhoneLink, RecurringMessage
from messaging.services import staff_member_ensure

BATCH_SIZE = 5000
TIME_ZONES = ["America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles", "Europe/London"]
BODIES = [
    "Service starts at 10am this Sunday. See you there!",
    "Reminder: youth group meets Friday at 7pm.",
    "Thank you for serving this week!",
    "Prayer meeting tonight at 6:30pm in the chapel.",
]

Progress = Callable[[int], None]


@dataclass(frozen=True)
class SeedResult:
    churches: int
    contacts: int
    messages: int


def demo_data_seed(
    *, churches: int, contacts: int, messages: int, progress: Progress | None = None, seed: int = 42
) -> SeedResult:
    """Create ``churches`` churches and spread ``contacts`` contacts and ``messages`` messages
    over them (totals, round-robin). The demo staff user belongs to the first new church.

    ``progress`` is called with the number of rows just written.
    """
    if churches < 1 and (contacts or messages):
        raise ValueError("contacts and messages need at least one church")
    report = progress or (lambda _rows: None)
    rng = random.Random(seed)  # noqa: S311 (demo data, not secrets)
    now = timezone.now()
    with transaction.atomic():
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
        report(len(new_churches) * 4)
    contact_ids: list[list[int]] = [[] for _ in new_churches]
    index_of_church = {church.id: index for index, church in enumerate(new_churches)}
    for start in range(0, contacts, BATCH_SIZE):
        contact_rows = [
            Contact(
                church=new_churches[index % churches],
                phone=f"+1212{2000000 + index // churches:07d}",
                name=f"Member {index}",
                opted_out=rng.random() < 0.02,
            )
            for index in range(start, min(contacts, start + BATCH_SIZE))
        ]
        with transaction.atomic():
            for contact in Contact.objects.bulk_create(contact_rows):
                contact_ids[index_of_church[contact.church_id]].append(contact.id)
        report(len(contact_rows))
    with_contacts = [index for index, ids in enumerate(contact_ids) if ids]
    if messages and not with_contacts:
        raise ValueError("messages need at least one contact")
    statuses = [Message.Status.DELIVERED] * 8 + [Message.Status.SENT, Message.Status.FAILED]
    for start in range(0, messages, BATCH_SIZE):
        rows: list[Message] = []
        for index in range(start, min(messages, start + BATCH_SIZE)):
            church_index = with_contacts[index % len(with_contacts)]
            inbound = rng.random() < 0.1
            rows.append(
                Message(
                    church=new_churches[church_index],
                    contact_id=rng.choice(contact_ids[church_index]),
                    direction=Message.Direction.INBOUND if inbound else Message.Direction.OUTBOUND,
                    body=rng.choice(BODIES),
                    status=Message.Status.DELIVERED if inbound else rng.choice(statuses),
                    sent_at=now - timedelta(minutes=rng.randint(0, 60 * 24 * 30)),
                )
            )
        with transaction.atomic():
            Message.objects.bulk_create(rows)
        report(len(rows))
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
