"""Micro-benchmark: microseconds per acquire+release for each lock implementation.

Run against the running local cluster (the lock nodes and PostgreSQL through PgBouncer)::

    .venv/bin/python bench/locks/bench_locks.py                  # 2,000 iterations per row
    .venv/bin/python bench/locks/bench_locks.py --iterations 50  # quick mode

Every row runs in this one invocation on the same nodes, interleaved: ten rounds, each running a
tenth of every row's iterations in turn, so that the load of whatever else shares the machine
falls on every row alike. pottery runs in its own process (importing it patches ``json.dumps``
for the whole interpreter), driven round by round over a pipe. The markdown table is printed
and written to ``bench/out/locks.md``. With audit+fence the service writes audit rows into the
database in ``DB_NAME`` (migrations applied, ``manage.py migrate locking``).

Goals (issue 5): the service on three nodes without audit at most half of pottery's median;
audit+fence adding at most 2 ms to the median.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

# Run as a script (python bench/...py), not a module: the repository root is found from this
# file, since nothing of the project can be imported before it is on sys.path.
REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "bench" / "out" / "locks.md"
ROUNDS = 10
# Fault tests elsewhere on the machine may pause a lock node for a moment: a step that fails is
# not a sample; it is counted, waited out and retried, up to this many times per row.
MAX_INTERRUPTIONS = 20


class Row:
    """One implementation; ``run(count)`` adds ``count`` samples (µs per acquire+release)."""

    def __init__(
        self,
        label: str,
        nodes: int,
        step: Callable[[], None],
        context: Callable[[], AbstractContextManager[object]] = nullcontext,
    ):
        self.label, self.nodes, self.step, self.context = label, nodes, step, context
        self.samples: list[float] = []
        self.interrupted = 0

    def run(self, count: int, *, record: bool = True) -> None:
        done = 0
        with self.context():
            while done < count:
                started = time.perf_counter_ns()
                try:
                    self.step()
                except Exception:
                    self.interrupted += 1
                    if self.interrupted > MAX_INTERRUPTIONS:
                        raise
                    time.sleep(0.5)
                    continue
                if record:
                    self.samples.append((time.perf_counter_ns() - started) / 1000)
                done += 1

    def close(self) -> None:
        pass

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p99(self) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


class PotteryRow(Row):
    """pottery in a child process (``--pottery-child``), asked for samples one round at a time."""

    def __init__(self, urls: list[str]):
        super().__init__("pottery Redlock", len(urls), step=lambda: None)
        self.child = subprocess.Popen(
            [sys.executable, __file__, "--pottery-child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        self._ask(json.dumps(urls))

    def _ask(self, line: str) -> dict[str, object]:
        assert self.child.stdin is not None and self.child.stdout is not None
        self.child.stdin.write(line + "\n")
        self.child.stdin.flush()
        answer = self.child.stdout.readline()
        if not answer:
            raise RuntimeError("the pottery benchmark process ended")
        return dict(json.loads(answer))

    def run(self, count: int, *, record: bool = True) -> None:
        answer = self._ask(json.dumps({"count": count}))
        self.interrupted = int(answer["interrupted"])  # type: ignore[call-overload]
        if record:
            self.samples.extend(answer["samples"])  # type: ignore[arg-type]

    def close(self) -> None:
        if self.child.stdin is not None:
            self.child.stdin.close()
        self.child.wait(timeout=30)


def pottery_child() -> None:
    """The child's side: the first line is the node URLs, then one ``{"count": N}`` per round."""
    from pottery import Redlock
    from redis import Redis

    urls = json.loads(sys.stdin.readline())
    masters = {Redis.from_url(url, socket_timeout=0.2, socket_connect_timeout=0.2) for url in urls}
    lock = Redlock(key=f"bench-pottery-{uuid.uuid4().hex[:8]}", masters=masters, auto_release_time=10)

    def step() -> None:
        if not lock.acquire(blocking=False):
            raise RuntimeError("pottery could not acquire a free lock")
        lock.release()

    row = Row("pottery Redlock", len(urls), step)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        before = len(row.samples)
        row.run(json.loads(line)["count"])
        print(json.dumps({"samples": row.samples[before:], "interrupted": row.interrupted}), flush=True)


def raw_row(url: str) -> Row:
    from redis import Redis

    client = Redis.from_url(url, socket_timeout=0.2, socket_connect_timeout=0.2)
    key = f"bench-raw-{uuid.uuid4().hex[:8]}"

    def step() -> None:
        if not client.set(key, "owner", nx=True, px=10_000):
            raise RuntimeError("SET NX refused on a free key")
        client.delete(key)

    return Row("raw SET NX PX + DEL", 1, step)


def python_redis_lock_row(url: str) -> Row:
    import redis_lock
    from redis import Redis

    client = Redis.from_url(url, socket_timeout=0.2, socket_connect_timeout=0.2)
    name = f"bench-prl-{uuid.uuid4().hex[:8]}"

    def step() -> None:
        lock = redis_lock.Lock(client, name, expire=10)
        if not lock.acquire(blocking=False):
            raise RuntimeError("python-redis-lock could not acquire a free lock")
        lock.release()

    return Row("python-redis-lock", 1, step)


def service_row(urls: list[str], *, audit: bool) -> Row:
    from django.test import override_settings

    from locking.services import acquire_job_lock, release_job_lock

    name = f"bench-service-{uuid.uuid4().hex[:8]}"

    def step() -> None:
        lock = acquire_job_lock(name, 10, audit=audit, fence=audit)
        if lock is None:
            raise RuntimeError("the service could not acquire a free lock")
        release_job_lock(lock)

    label = "this service, audit+fence" if audit else "this service, no audit"
    return Row(label, len(urls), step, context=lambda: override_settings(LOCK_REDIS_URLS=urls))


def chunks(total: int, rounds: int) -> Iterator[int]:
    for index in range(rounds):
        yield total * (index + 1) // rounds - total * index // rounds


def render(rows: list[Row], iterations: int, rounds: int) -> str:
    pottery = next(row for row in rows if row.label.startswith("pottery"))
    lines = [
        f"# Lock acquire+release, {iterations} iterations per row in {rounds} interleaved rounds (µs)",
        "",
        "| implementation | nodes | median µs | p99 µs | median vs pottery |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        note = f" ({row.interrupted} interrupted)" if row.interrupted else ""
        ratio = row.median / pottery.median
        lines.append(f"| {row.label}{note} | {row.nodes} | {row.median:.0f} | {row.p99:.0f} | {ratio:.2f} |")
    by_key = {(row.label, row.nodes): row for row in rows}
    plain = by_key[("this service, no audit", 3)].median
    audited = by_key[("this service, audit+fence", 3)].median
    lines += [
        "",
        f"- Service on 3 nodes without audit / pottery: {plain / pottery.median:.2f} (goal ≤ 0.50).",
        f"- Audit+fence adds {(audited - plain) / 1000:.2f} ms on 3 nodes (goal ≤ 2 ms).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--pottery-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.pottery_child:
        pottery_child()
        return

    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    import django

    django.setup()
    import logging

    logging.disable(logging.INFO)  # one log line per grant would be measured too

    from django.conf import settings

    urls = list(settings.LOCK_REDIS_URLS)
    if len(urls) < 3:
        raise SystemExit(f"the benchmark needs three lock nodes; LOCK_REDIS_URLS has {len(urls)}")
    one, three = urls[:1], urls[:3]
    rows = [
        raw_row(one[0]),
        python_redis_lock_row(one[0]),
        PotteryRow(three),
        service_row(one, audit=False),
        service_row(three, audit=False),
        service_row(one, audit=True),
        service_row(three, audit=True),
    ]
    rounds = max(1, min(ROUNDS, args.iterations))
    try:
        for row in rows:
            row.run(args.warmup, record=False)
        for count in chunks(args.iterations, rounds):
            for row in rows:
                row.run(count)
    finally:
        for row in rows:
            row.close()
    table = render(rows, args.iterations, rounds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)
    sys.stdout.write(table)


if __name__ == "__main__":
    main()
