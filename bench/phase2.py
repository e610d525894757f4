"""Phase 2 data: do the message list and its variants cost the same on a large, realistic database?

    .venv/bin/python -m bench.phase2 [--scale 1.0] [--no-burst]
    make bench SCALE=phase2

Runs against the running cluster (``make up``; local settings). In one run it measures the
message-list request (``GET /api/messages?limit=50`` as the demo user, through the project's
WSGI application exactly as ``bench.profile_request`` calls it: every middleware, the replica
and the primary through PgBouncer) on the data the database holds, then seeds the Phase 2 data
with ``bench.phase2_data`` (10,000 churches of skewed sizes, about 1,000,000 contacts and
5,000,000 messages over two years; ``--scale`` shrinks it; nothing if it is there already),
waits for the replica to replay it, and measures the same request again: the figure is the
median CPU per request over several rounds (``time.process_time`` in this process), with the
load average at each round. Then, through NGINX as whole-machine CPU per request
(``bench.phase2_data.measure``): the message list of the largest church and of a median one, a
deep page and the contact filter, each against the small-data list measured around them. Then,
on that data, the Sunday burst (``bench.burst``: 10,000 recurring messages due in one tick).

If the database already holds the Phase 2 data, nothing is seeded and there is no small-data
in-process figure in this run: the report says so (start from an empty cluster for it).

Writes ``bench/out/phase2.md`` and replaces the Phase 2 section of ``bench/report.md`` and
``docs/phase2-verification.md`` (between ``<!-- phase2 -->`` markers; ``make bench`` keeps it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.inprocess import django_environment
from deploy.local.cluster import REPO

BEGIN, END = "<!-- phase2 -->", "<!-- /phase2 -->"
GOAL = 1.10  # the seed's goal: within 10 % of the small-data figure


@dataclass(frozen=True)
class Figure:
    label: str
    messages: int
    church_messages: int
    cpu_us: list[float]
    wall_us: list[float]
    load: list[float]

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu_us)

    @property
    def wall_median(self) -> float:
        return statistics.median(self.wall_us)


def _measure(label: str, *, token: str, church_id: int, rounds: int, requests: int) -> Figure:
    from bench.profile_request import _one
    from config.databases import PRIMARY_DB_ALIAS
    from config.wsgi import application
    from messaging.models import Message

    for _ in range(50):  # warm: connections, caches, the pages this church's list reads
        _one(application, token)
    cpu, wall, load = [], [], []
    for _ in range(rounds):
        started_cpu, started_wall = time.process_time(), time.perf_counter()
        for _ in range(requests):
            _one(application, token)
        cpu.append((time.process_time() - started_cpu) * 1e6 / requests)
        wall.append((time.perf_counter() - started_wall) * 1e6 / requests)
        load.append(os.getloadavg()[0])
    return Figure(
        label=label,
        messages=Message.objects.using(PRIMARY_DB_ALIAS).count(),
        church_messages=Message.objects.using(PRIMARY_DB_ALIAS).filter(church_id=church_id).count(),
        cpu_us=cpu,
        wall_us=wall,
        load=load,
    )


def _replica_caught_up(timeout: float = 600) -> float:
    """Wait until the replica has replayed everything the primary has written; return seconds."""
    from django.db import connections

    from config.databases import PRIMARY_DB_ALIAS

    started = time.monotonic()
    with connections[PRIMARY_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()")
        target = cursor.fetchone()[0]
    while time.monotonic() - started < timeout:
        with connections["replica"].cursor() as cursor:
            cursor.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target])
            if cursor.fetchone()[0]:
                return time.monotonic() - started
        time.sleep(1)
    raise RuntimeError(f"the replica did not replay up to {target} within {timeout:.0f} s")


def replace_section(path: Path, section: str, markers: tuple[str, str] = (BEGIN, END)) -> None:
    """Put ``section`` between its markers in ``path`` (replacing what was there, or at the end)."""
    begin, end = markers
    text = path.read_text() if path.exists() else ""
    block = f"{begin}\n{section.rstrip()}\n{end}\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1].lstrip("\n")
    else:
        text = text.rstrip() + "\n\n" + block
    path.write_text(text)


def section_carry_over(old_text: str, new_text: str, markers: tuple[str, str] = (BEGIN, END)) -> str:
    """``bench.report`` rewrites its files whole: keep the last section between ``markers`` (the
    Phase 2 one unless told) at their end."""
    begin, end = markers
    if begin not in old_text or end not in old_text or begin in new_text:
        return new_text
    block = old_text.split(begin, 1)[1].split(end, 1)[0]
    return new_text.rstrip() + "\n\n" + begin + block + end + "\n"


def _section(
    *,
    small: Figure | None,
    large: Figure,
    seeded: str,
    rounds: int,
    requests: int,
    started: float,
    realistic: str | None = None,
    burst: str | None = None,
) -> str:
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started))
    rows = [small, large] if small else [large]
    lines = [
        "## Phase 2 data: the message list on a large database",
        "",
        f"Measured by `make bench SCALE=phase2` (`python -m bench.phase2`) on {when}: "
        f"`GET /api/messages?limit=50` as the demo user, in one process through the WSGI "
        f"application (every middleware, the replica and the primary through PgBouncer), "
        f"{rounds} rounds of {requests} requests after a warm-up; median of the rounds. {seeded}",
        "",
        "| data | messages in the database | messages of the church | CPU per request (median) "
        "| rounds (CPU µs) | wall per request (median) | load average (1 min) |",
        "|---|---:|---:|---:|---|---:|---|",
    ]
    for figure in rows:
        lines.append(
            f"| {figure.label} | {figure.messages:,} | {figure.church_messages:,} | "
            f"{figure.cpu_median:,.0f} µs | {', '.join(f'{v:,.0f}' for v in figure.cpu_us)} | "
            f"{figure.wall_median:,.0f} µs | {', '.join(f'{v:.1f}' for v in figure.load)} |"
        )
    lines.append("")
    if small:
        ratio = large.cpu_median / small.cpu_median
        verdict = "met" if ratio <= GOAL else "**not met**"
        lines.append(
            f"Goal, message-list CPU per request at Phase 2 size within 10 % of the small-data figure: "
            f"{ratio:.2f}x ({large.cpu_median:,.0f} vs {small.cpu_median:,.0f} µs): {verdict}."
        )
    else:
        lines.append(
            "No small-data figure in this run: the database already held the Phase 2 totals "
            "(start from an empty cluster for the comparison)."
        )
    if realistic:
        lines += [
            "",
            "### Through NGINX on the Phase 2 data",
            "",
            "`python -m bench.phase2_data measure`: wrk at 64 connections through the cluster's NGINX, "
            "whole-machine CPU per request; the small-data list (the demo church) is measured before "
            "and after the others and their mean is the baseline.",
            "",
            realistic.rstrip(),
        ]
    lines += ["", burst.rstrip() if burst else "The Sunday burst was not measured in this run (--no-burst)."]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> str:
    django_environment("phase2")
    import logging

    from django.conf import settings
    from django.core.management import call_command

    import config.wsgi  # noqa: F401 (django.setup() runs here, once: it would reinstall the log handlers)
    from messaging.models import Church, Message, StaffMember
    from messaging.tokens.services import api_token_create

    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    handlers = [h for lg in loggers if isinstance(lg, logging.Logger) for h in lg.handlers]
    for handler in handlers:  # the request log line goes nowhere, as in profile_request
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 (lives as long as the process)
    started = time.time()
    if not StaffMember.objects.filter(user__username=settings.MESSAGING_DEMO_USERNAME).exists():
        call_command("seed_demo", "--if-empty")
    staff = StaffMember.objects.select_related("user").get(user__username=settings.MESSAGING_DEMO_USERNAME)
    token = api_token_create(user=staff.user)
    measure: dict[str, Any] = {
        "token": token,
        "church_id": staff.church_id,
        "rounds": args.rounds,
        "requests": args.requests,
    }

    from bench import phase2_data

    wanted = max(2, round(phase2_data.FULL["churches"] * args.scale))
    small = None
    if Church.objects.filter(name__startswith=phase2_data.NAME).count() != wanted:
        have = Message.objects.count()
        print(f"phase2: measuring the message list on the data there ({have:,} messages)", flush=True)
        small = _measure("small (before the seed)", **measure)
        print(f"phase2: small data: {small.cpu_median:,.0f} µs CPU per request", flush=True)
        result = phase2_data.seed(scale=args.scale, progress=lambda line: print(line, flush=True))
        replay = _replica_caught_up()
        seeded = (
            f"Seeded in this run by `python -m bench.phase2_data seed --scale {args.scale:g}`: "
            f"{result.churches:,} churches of skewed sizes, {result.contacts:,} contacts, "
            f"{result.messages:,} messages over two years, in {result.seconds:,.0f} s "
            f"({result.messages / max(result.seconds, 1e-9):,.0f} messages/s; load average "
            f"{os.getloadavg()[0]:.1f} at the end); the replica replayed it {replay:,.0f} s later."
        )
    else:
        seeded = "The database held the Phase 2 data already: nothing seeded."
    print(f"phase2: {seeded}", flush=True)
    total = Message.objects.count()
    large = _measure(f"Phase 2 ({total:,} messages)", **measure)
    print(f"phase2: Phase 2 data: {large.cpu_median:,.0f} µs CPU per request", flush=True)
    print(
        "phase2: the largest church, a median one, a deep page, the contact filter through NGINX", flush=True
    )
    realistic = phase2_data.markdown(phase2_data.measure(seconds=args.seconds))
    burst = None
    if not args.no_burst:
        from bench import burst as sunday

        burst = sunday.markdown(sunday.run(argparse.Namespace(**sunday.DEFAULTS)))
    return _section(
        small=small,
        large=large,
        seeded=seeded,
        rounds=args.rounds,
        requests=args.requests,
        started=started,
        realistic=realistic,
        burst=burst,
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="of the Phase 2 data (bench.phase2_data)")
    parser.add_argument("--seconds", type=float, default=15.0, help="per request measured through NGINX")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200, help="requests per round")
    parser.add_argument("--no-burst", action="store_true", help="leave out the Sunday burst (bench.burst)")
    parser.add_argument("--no-write", action="store_true", help="print the section, write no file")
    args = parser.parse_args(argv)
    section = run(args)
    sys.stdout.write(section)
    if not args.no_write:
        out = REPO / "bench" / "out"
        out.mkdir(exist_ok=True)
        (out / "phase2.md").write_text(section)
        for path in (REPO / "bench" / "report.md", REPO / "docs" / "phase2-verification.md"):
            replace_section(path, section)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
