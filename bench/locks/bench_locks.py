"""Micro-benchmark: microseconds per acquire+release for each lock implementation.

Run against the running local cluster (the lock nodes and PostgreSQL through PgBouncer)::

    .venv/bin/python bench/locks/bench_locks.py               # 2,000 iterations per row
    .venv/bin/python bench/locks/bench_locks.py --iterations 50  # quick mode

Every row runs in this one invocation on the same nodes; pottery runs in its own process,
because importing it patches ``json.dumps`` for the whole interpreter. The markdown table is
printed and written to ``bench/out/locks.md``. With audit+fence the service writes audit rows
into the database in ``DB_NAME`` (migrations applied, ``manage.py migrate locking``).

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
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "bench" / "out" / "locks.md"


MAX_INTERRUPTIONS = 20


def measure(step: Callable[[], None], iterations: int, warmup: int) -> dict[str, float]:
    """Median and p99 of ``step`` in µs. Fault tests elsewhere on the machine may pause a lock
    node for a moment: a failed step is not a sample; it is counted, waited out and retried."""
    interrupted = 0

    def attempt() -> float | None:
        nonlocal interrupted
        started = time.perf_counter_ns()
        try:
            step()
        except Exception:
            interrupted += 1
            if interrupted > MAX_INTERRUPTIONS:
                raise
            time.sleep(0.5)
            return None
        return (time.perf_counter_ns() - started) / 1000

    for _ in range(warmup):
        attempt()
    samples: list[float] = []
    while len(samples) < iterations:
        sample = attempt()
        if sample is not None:
            samples.append(sample)
    samples.sort()
    return {
        "median": statistics.median(samples),
        "p99": samples[min(len(samples) - 1, int(len(samples) * 0.99))],
        "interrupted": interrupted,
    }


def lock_urls() -> list[str]:
    from django.conf import settings

    return list(settings.LOCK_REDIS_URLS)


def bench_pottery(iterations: int, warmup: int, urls: list[str]) -> dict[str, float]:
    """Runs only in the child process started by ``run_pottery``."""
    from pottery import Redlock
    from redis import Redis

    masters = {Redis.from_url(url, socket_timeout=0.2, socket_connect_timeout=0.2) for url in urls}
    lock = Redlock(key=f"bench-pottery-{uuid.uuid4().hex[:8]}", masters=masters, auto_release_time=10)

    def step() -> None:
        if not lock.acquire(blocking=False):
            raise RuntimeError("pottery could not acquire a free lock")
        lock.release()

    return measure(step, iterations, warmup)


def run_pottery(iterations: int, warmup: int, urls: list[str]) -> dict[str, float]:
    command = [
        sys.executable,
        __file__,
        "--pottery-only",
        "--iterations",
        str(iterations),
        "--warmup",
        str(warmup),
    ]
    result = subprocess.run(
        command, input=json.dumps(urls), capture_output=True, text=True, check=True, cwd=REPO, timeout=600
    )
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def bench_raw(iterations: int, warmup: int, url: str) -> dict[str, float]:
    from redis import Redis

    client = Redis.from_url(url, socket_timeout=0.2, socket_connect_timeout=0.2)
    key = f"bench-raw-{uuid.uuid4().hex[:8]}"

    def step() -> None:
        if not client.set(key, "owner", nx=True, px=10_000):
            raise RuntimeError("SET NX refused on a free key")
        client.delete(key)

    return measure(step, iterations, warmup)


def bench_python_redis_lock(iterations: int, warmup: int, url: str) -> dict[str, float]:
    import redis_lock
    from redis import Redis

    client = Redis.from_url(url, socket_timeout=0.2, socket_connect_timeout=0.2)
    name = f"bench-prl-{uuid.uuid4().hex[:8]}"

    def step() -> None:
        lock = redis_lock.Lock(client, name, expire=10)
        if not lock.acquire(blocking=False):
            raise RuntimeError("python-redis-lock could not acquire a free lock")
        lock.release()

    return measure(step, iterations, warmup)


def bench_service(iterations: int, warmup: int, urls: list[str], *, audit: bool) -> dict[str, float]:
    from django.test import override_settings

    from locking.services import acquire_job_lock, release_job_lock

    name = f"bench-service-{uuid.uuid4().hex[:8]}"

    def step() -> None:
        lock = acquire_job_lock(name, 10, audit=audit, fence=audit)
        if lock is None:
            raise RuntimeError("the service could not acquire a free lock")
        release_job_lock(lock)

    with override_settings(LOCK_REDIS_URLS=urls):
        return measure(step, iterations, warmup)


def render(results: list[tuple[str, int, dict[str, float]]], iterations: int) -> str:
    pottery = next(r for label, _, r in results if label.startswith("pottery"))
    lines = [
        f"# Lock acquire+release, {iterations} iterations per row (µs)",
        "",
        "| implementation | nodes | median µs | p99 µs | median vs pottery |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, nodes, result in results:
        ratio = result["median"] / pottery["median"]
        note = f" ({result['interrupted']:.0f} interrupted)" if result.get("interrupted") else ""
        lines.append(
            f"| {label}{note} | {nodes} | {result['median']:.0f} | {result['p99']:.0f} | {ratio:.2f} |"
        )
    by_key = {(label, nodes): result for label, nodes, result in results}
    plain = by_key[("this service, no audit", 3)]["median"]
    audited = by_key[("this service, audit+fence", 3)]["median"]
    lines += [
        "",
        f"- Service on 3 nodes without audit / pottery: {plain / pottery['median']:.2f} (goal ≤ 0.50).",
        f"- Audit+fence adds {(audited - plain) / 1000:.2f} ms on 3 nodes (goal ≤ 2 ms).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--pottery-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.pottery_only:
        urls = json.loads(sys.stdin.read())
        print(json.dumps(bench_pottery(args.iterations, args.warmup, urls)))
        return

    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    import django

    django.setup()
    import logging

    logging.disable(logging.INFO)  # one log line per grant would be measured too

    urls = lock_urls()
    if len(urls) < 3:
        raise SystemExit(f"the benchmark needs three lock nodes; LOCK_REDIS_URLS has {len(urls)}")
    one, three = urls[:1], urls[:3]
    n, warm = args.iterations, args.warmup
    results = [
        ("raw SET NX PX + DEL", 1, bench_raw(n, warm, one[0])),
        ("python-redis-lock", 1, bench_python_redis_lock(n, warm, one[0])),
        ("pottery Redlock", 3, run_pottery(n, warm, three)),
        ("this service, no audit", 1, bench_service(n, warm, one, audit=False)),
        ("this service, no audit", 3, bench_service(n, warm, three, audit=False)),
        ("this service, audit+fence", 1, bench_service(n, warm, one, audit=True)),
        ("this service, audit+fence", 3, bench_service(n, warm, three, audit=True)),
    ]
    table = render(results, n)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)
    sys.stdout.write(table)


if __name__ == "__main__":
    main()
