"""Phase 2 data shaped like the real thing, and the requests whose cost it changes.

    .venv/bin/python -m bench.phase2_data seed [--scale 1.0]       # 10,000 churches, ~1,000,000 contacts
    .venv/bin/python -m bench.phase2_data measure [--seconds 15]    # through NGINX, CPU per request
    .venv/bin/python -m bench.phase2_data remove                    # the seeded churches and theirs

``bench.phase2`` used to put its 5,000,000 messages into one new church with one contact, so the
church it measured kept its few thousand messages and every request read the same first rows.
Here churches have the sizes real ones have (:func:`church_sizes`): at full scale, 10 with
20,000-50,000 contacts, most with 20-200 and a few hundred between, about 1,000,000 in all;
each church's messages follow its size (five per contact), and they are spread over the last
two years in time order (ids rise with time, as they do when messages are written as they
happen). ``--scale`` shrinks every total (0.001: 10 churches, 1,000 contacts) for a test.

``measure`` reads the seeded churches back and measures, through the cluster's NGINX with wrk
at 64 connections after a warm-up of each, as whole-machine CPU per request
(``bench.samplers``): the message list of the largest church and of a median one, a deep page
(``after=`` 90 % into the large church's messages) and the contact filter (``contact=`` one of
its busiest contacts), each set against the small-data list (the demo church), measured before
and after them. A staff member and an API token are made for each church measured.

Rows go in with ``COPY`` on the primary, one transaction per batch (PgBouncer runs in
transaction mode). Names start with ``Phase2 church``: a second ``seed`` at the same scale adds
nothing, at another scale it refuses until ``remove`` has run.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import math
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

FULL = {"churches": 10_000, "contacts": 1_000_000, "messages_per_contact": 5, "days": 730}
LARGE_SHARE_OF_CHURCHES = 0.001  # 10 of 10,000
LARGE_SHARE_OF_CONTACTS = 0.35  # they hold about a third of everyone
SMALL_SHARE_OF_CHURCHES = 0.95  # 20-200 contacts
SMALL_RANGE = (20, 200)
NAME = "Phase2 church"
STAFF = "phase2-staff-"  # usernames of the staff made to measure a church
BASELINE = "message list, the demo church (small data)"
GOAL = 1.2  # issue 21: each within 1.2x of the small-data list
COPY_BATCH = 100_000


# --- the pure parts --------------------------------------------------------------------------------


def church_sizes(*, churches: int, contacts: int, seed: int = 21) -> list[int]:
    """Contacts per church, skewed like real churches, summing to ``contacts`` exactly.

    A few large churches share about a third of the contacts (at full scale 20,000-50,000
    each); 95 % are small, 20-200 drawn towards the small end (most churches are small); the
    rest share what is left, log-uniformly between them. Largest first."""
    draw = random.Random(seed)
    large = max(1, round(churches * LARGE_SHARE_OF_CHURCHES))
    small = min(churches - large, round(churches * SMALL_SHARE_OF_CHURCHES))
    middle = churches - large - small
    low, high = SMALL_RANGE
    # 20 x 10^(u^2): log-scale, squared towards the low end (median about 35)
    small_sizes = [int(low * (high / low) ** (draw.random() ** 2)) for _ in range(small)]
    weights = [draw.uniform(0.6, 1.4) for _ in range(large)]
    large_total = contacts * LARGE_SHARE_OF_CONTACTS
    large_sizes = [int(large_total * weight / sum(weights)) for weight in weights]
    left = max(contacts - sum(large_sizes) - sum(small_sizes), middle)
    middle_weights = [math.exp(draw.uniform(0, 3)) for _ in range(middle)]
    middle_sizes = [max(1, int(left * weight / sum(middle_weights))) for weight in middle_weights]
    sizes = sorted(large_sizes + middle_sizes + small_sizes, reverse=True)
    sizes = [max(size, 1) for size in sizes]
    sizes[0] += contacts - sum(sizes)  # rounding: the largest church takes the difference
    return sizes


def message_times(*, count: int, end: datetime, days: int, seed: int = 21) -> Iterator[datetime]:
    """``count`` send times over the ``days`` before ``end``, rising (so are the ids given in
    that order), each one's gap to the next drawn at random around the mean."""
    draw = random.Random(seed)
    span = timedelta(days=days).total_seconds()
    start = end - timedelta(days=days)
    step = span / max(count, 1)
    now = 0.0
    for _ in range(count):
        now += draw.uniform(0, 2 * step)
        yield start + timedelta(seconds=min(now, span))


def church_for_message(cumulative: Sequence[int], pick: float) -> int:
    """The index of the church a message goes to: ``pick`` in [0, 1) over the cumulative sizes,
    so a church's share of messages is its share of contacts."""
    return bisect.bisect_right(cumulative, pick * cumulative[-1])


# --- seeding ----------------------------------------------------------------------------------------


def _copy(table: str, columns: Sequence[str], lines: Iterable[str]) -> None:
    from django.db import connections, transaction

    from config.databases import PRIMARY_DB_ALIAS

    sql = f'COPY "{table}" ({", ".join(columns)}) FROM STDIN'
    with (
        transaction.atomic(using=PRIMARY_DB_ALIAS),
        connections[PRIMARY_DB_ALIAS].cursor() as cursor,
        cursor.cursor.copy(sql) as copy,
    ):
        copy.write("".join(lines))


def _first_id(table: str, count: int) -> int:
    """Reserve ``count`` consecutive ids of ``table`` (locked, so no insert takes one between)."""
    from django.db import connections, transaction

    from config.databases import PRIMARY_DB_ALIAS

    with transaction.atomic(using=PRIMARY_DB_ALIAS), connections[PRIMARY_DB_ALIAS].cursor() as cursor:
        cursor.execute(f'LOCK TABLE "{table}" IN SHARE ROW EXCLUSIVE MODE')
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
        sequence = cursor.fetchone()[0]
        cursor.execute("SELECT setval(%s, nextval(%s) + %s - 1)", [sequence, sequence, count])
        return int(cursor.fetchone()[0]) - count + 1


@dataclass(frozen=True)
class Seeded:
    churches: int
    contacts: int
    messages: int
    seconds: float


def seed(*, scale: float, progress: Callable[[str], None] = print) -> Seeded:
    """The Phase 2 data at ``scale`` (1.0: full), unless churches of this seed exist already."""
    from django.db import connections
    from django.utils import timezone

    from config.databases import PRIMARY_DB_ALIAS
    from messaging.models import Church, Contact, Message, PhoneLink

    started = time.monotonic()
    churches = max(2, round(FULL["churches"] * scale))
    there = Church.objects.using(PRIMARY_DB_ALIAS).filter(name__startswith=NAME).count()
    if there == churches:
        progress("phase2 data: seeded already")
        return Seeded(0, 0, 0, 0.0)
    if there:
        raise RuntimeError(
            f"{there:,} churches of another scale are there: `python -m bench.phase2_data remove` first"
        )
    contacts = max(churches, round(FULL["contacts"] * scale))
    messages = contacts * FULL["messages_per_contact"]
    sizes = church_sizes(churches=churches, contacts=contacts)
    new = Church.objects.bulk_create(
        [Church(name=f"{NAME} {index + 1}", time_zone="America/Chicago") for index in range(churches)],
        batch_size=5000,
    )
    first_link = PhoneLink.objects.count() + 1
    PhoneLink.objects.bulk_create(
        [
            PhoneLink(
                church=church,
                phone=f"+1646{3000000 + first_link + index:07d}",
                state=PhoneLink.State.LINKED,
                attempts=1,
            )
            for index, church in enumerate(new)
        ],
        batch_size=5000,
    )
    progress(f"phase2 data: {churches:,} churches, sizes {sizes[0]:,} .. {sizes[-1]:,}")
    # Contacts of church k take ids offsets[k] .. offsets[k] + size - 1: a message can pick
    # one of its church's contacts without reading ids back.
    first_contact = _first_id(Contact._meta.db_table, contacts)
    offsets = [0]
    for size in sizes:
        offsets.append(offsets[-1] + size)
    draw = random.Random(21)
    created = timezone.now().isoformat()
    rows = ((k, i) for k, size in enumerate(sizes) for i in range(size))
    batch: list[str] = []
    for count, (k, i) in enumerate(rows, start=1):
        opted = "t" if draw.random() < 0.02 else "f"
        batch.append(f"{first_contact + offsets[k] + i}\t{new[k].id}\t+1312{2000000 + i:07d}\tMember {i}"
                     f"\t{opted}\t{created}\n")  # fmt: skip
        if len(batch) == COPY_BATCH or count == contacts:
            _copy(
                Contact._meta.db_table, ["id", "church_id", "phone", "name", "opted_out", "created_at"], batch
            )
            batch = []
            progress(f"phase2 data: contacts {count:,}/{contacts:,}")
    cumulative = offsets[1:]
    times = message_times(count=messages, end=timezone.now(), days=FULL["days"])
    columns = ["church_id", "contact_id", "direction", "body", "status", "error", "created_at", "updated_at",
               "sent_at"]  # fmt: skip
    for start in range(0, messages, COPY_BATCH):
        lines = []
        for when in itertools.islice(times, COPY_BATCH):
            k = church_for_message(cumulative, draw.random())
            contact = first_contact + offsets[k] + draw.randrange(sizes[k])
            inbound = draw.random() < 0.1
            stamp = when.isoformat()
            lines.append(
                f"{new[k].id}\t{contact}\t{'inbound' if inbound else 'outbound'}\tSee you on Sunday!"
                f"\t{Message.Status.DELIVERED}\t\t{stamp}\t{stamp}\t{stamp}\n"
            )
        _copy(Message._meta.db_table, columns, lines)
        progress(f"phase2 data: messages {min(start + COPY_BATCH, messages):,}/{messages:,}")
    with connections[PRIMARY_DB_ALIAS].cursor() as cursor:
        cursor.execute(f'ANALYZE "{Contact._meta.db_table}", "{Message._meta.db_table}"')
    return Seeded(churches, contacts, messages, time.monotonic() - started)


def remove() -> int:
    """Delete the seeded churches and everything of theirs; how many churches."""
    from django.contrib.auth import get_user_model
    from django.db import connections, transaction

    from config.databases import PRIMARY_DB_ALIAS
    from messaging.models import Church

    churches = Church.objects.using(PRIMARY_DB_ALIAS).filter(name__startswith=NAME)
    ids = list(churches.values_list("id", flat=True))
    with transaction.atomic(using=PRIMARY_DB_ALIAS), connections[PRIMARY_DB_ALIAS].cursor() as cursor:
        # The bulk first, in SQL: the ORM's cascade would load every row.
        cursor.execute("DELETE FROM messaging_message WHERE church_id = ANY(%s)", [ids])
        cursor.execute("DELETE FROM messaging_contact WHERE church_id = ANY(%s)", [ids])
        churches.delete()
        get_user_model().objects.filter(username__startswith=STAFF).delete()
    return len(ids)


# --- what is measured --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    label: str
    church_id: int
    church_contacts: int
    church_messages: int
    path: str


def targets() -> list[Target]:
    """The requests to measure, from the seeded churches: the largest, a median one, a deep page
    and the contact filter of the largest."""
    from django.db.models import Count

    from config.databases import PRIMARY_DB_ALIAS
    from messaging.models import Church, Message

    seeded = (
        Church.objects.using(PRIMARY_DB_ALIAS)
        .filter(name__startswith=NAME)
        .annotate(size=Count("contacts"))
        .order_by("-size", "id")
        .values_list("id", "size")
    )
    ranked = list(seeded)
    if not ranked:
        raise RuntimeError("no Phase 2 churches: run `python -m bench.phase2_data seed` first")
    (large, large_size), (median, median_size) = ranked[0], ranked[len(ranked) // 2]
    messages = Message.objects.using(PRIMARY_DB_ALIAS)

    def count(church_id: int) -> int:
        return messages.filter(church_id=church_id).count()

    ids = messages.filter(church_id=large).order_by("id").values_list("id", flat=True)
    large_count = count(large)
    deep = ids[int(large_count * 0.9)] if large_count else 0
    busiest = (
        messages.filter(church_id=large).values("contact_id").annotate(n=Count("id")).order_by("-n").first()
    )
    contact = busiest["contact_id"] if busiest else 0
    list_path = "/api/messages?limit=20"
    return [
        Target("message list, largest church", large, large_size, large_count, list_path),
        Target("message list, median church", median, median_size, count(median), list_path),
        Target("deep page (after= 90 % in), largest church", large, large_size, large_count,
               f"{list_path}&after={deep}"),
        Target("contact filter, largest church", large, large_size, large_count,
               f"{list_path}&contact={contact}"),
    ]  # fmt: skip


def _demo_target() -> Target:
    """The load test's own request: the demo user's church, with the small data it has."""
    from django.conf import settings

    from messaging.models import Contact, Message, StaffMember

    staff = StaffMember.objects.get(user__username=settings.MESSAGING_DEMO_USERNAME)
    church = staff.church_id
    return Target(
        BASELINE,
        church,
        Contact.objects.filter(church_id=church).count(),
        Message.objects.filter(church_id=church).count(),
        "/api/messages?limit=20",
    )


def token_for(church_id: int) -> str:
    """An API token of a staff member of the church (made the first time)."""
    from django.contrib.auth import get_user_model

    from messaging.models import StaffMember
    from messaging.tokens.services import api_token_create

    user, _ = get_user_model().objects.get_or_create(username=f"{STAFF}{church_id}")
    StaffMember.objects.get_or_create(user=user, defaults={"church_id": church_id})
    return api_token_create(user=user)


def measure(*, seconds: float, connections: int = 64) -> list[dict[str, Any]]:
    """Each target through the cluster's NGINX with wrk, as whole-machine CPU per request."""
    from bench.generators import wrk
    from bench.plan import Plan, Run
    from bench.samplers import PrimaryConnections
    from bench.scenarios import measure_wrk
    from deploy.local import cluster

    cfg = cluster.Settings()
    bypass = {"X-RateLimit-Bypass": cfg.ratelimit_bypass_token()}
    nginx = cfg.edge_url()
    run = Run(Plan.fast())
    sampler = PrimaryConnections(cfg)
    sampler.start()
    rows = []
    try:
        demo = _demo_target()
        chosen = [demo, *targets()]
        tokens = {target.church_id: token_for(target.church_id) for target in chosen}
        for target in chosen:  # warm: connections, each token's cache entry, the pages read
            headers = {**bypass, "Authorization": f"Bearer {tokens[target.church_id]}"}
            wrk(f"{nginx}{target.path}", connections=8, seconds=1, headers=headers)
        for target in [*chosen, demo]:
            headers = {**bypass, "Authorization": f"Bearer {tokens[target.church_id]}"}
            row = measure_wrk(run, sampler, target.label, f"{nginx}{target.path}", connections, headers,
                              seconds=seconds)  # fmt: skip
            figures = {
                "rps": row.served_rps,
                "p99_ms": row.p99_ms,
                "errors": row.errors,
                "cpu_machine_ms": row.cpu_machine_ms,
                "cpu_cluster_ms": row.cpu_cluster_ms,
            }
            rows.append({**target.__dict__, **figures})
    finally:
        sampler.stop()
    return rows


def baseline_ms(rows: list[dict[str, Any]]) -> float | None:
    """The small-data list's CPU per request: the mean of its rows (measured first and last)."""
    figures = [row["cpu_machine_ms"] for row in rows if row["label"] == BASELINE]
    return statistics.mean(figures) if figures else None


def markdown(rows: list[dict[str, Any]]) -> str:
    """The measured requests as a table, each against the small-data list measured around them."""
    base = baseline_ms(rows)
    lines = [
        "| request | church's contacts | church's messages | served 2xx/s | p99 ms | errors "
        "| CPU ms/req (machine) | ÷ small-data list |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        ratio = f"{row['cpu_machine_ms'] / base:.2f}x" if base else "-"
        lines.append(
            f"| {row['label']} (`{row['path']}`) | {row['church_contacts']:,} | {row['church_messages']:,} | "
            f"{row['rps']:,.0f} | {row['p99_ms']:,.1f} | {row['errors']:,} | {row['cpu_machine_ms']:.2f} | "
            f"{ratio} |"
        )
    if base:
        goal = [row for row in rows if row["label"] not in (BASELINE, "message list, median church")]
        worst = max((row["cpu_machine_ms"] / base for row in goal), default=0.0)
        verdict = "met" if worst <= GOAL else "**not met**"
        lines += [
            "",
            f"Goal, the largest church, the deep page and the contact filter each within {GOAL}x of the "
            f"small-data list's CPU per request: the worst {worst:.2f}x: {verdict}.",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["seed", "measure", "remove"])
    parser.add_argument("--scale", type=float, default=1.0, help="of the full totals (seed)")
    parser.add_argument("--seconds", type=float, default=15.0, help="per request measured")
    args = parser.parse_args(argv)
    from bench.inprocess import django_environment

    django_environment("phase2-data")
    import django

    django.setup()
    if args.step == "seed":
        seeded = seed(scale=args.scale)
        print(json.dumps(seeded.__dict__))
        return 0
    if args.step == "remove":
        print(f"phase2 data: {remove():,} churches removed")
        return 0
    rows = measure(seconds=args.seconds)
    sys.stdout.write(markdown(rows))
    print(f"median CPU ms/req: {statistics.median(row['cpu_machine_ms'] for row in rows):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
