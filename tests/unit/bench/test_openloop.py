"""The open-loop generator (bench/openloop.py): its schedule, its arithmetic, and against a real
slow server on loopback that requests keep starting on time and their latency counts from the
scheduled time (coordinated omission corrected)."""

import asyncio
import contextlib
import itertools
from typing import Any

import pytest

from bench import openloop
from bench.scenarios import open_loop_row
from deploy.local.host import free_port

pytestmark = pytest.mark.unit


def test_the_schedule_is_poisson_at_the_rate_and_the_same_for_a_seed() -> None:
    # when a minute at 200 req/s is drawn twice from one seed and once from another
    first = openloop.arrivals(rate=200, seconds=60, seed=21)
    again = openloop.arrivals(rate=200, seconds=60, seed=21)
    other = openloop.arrivals(rate=200, seconds=60, seed=22)
    # then the same seed gives the same schedule, in order, inside the window, near the rate
    assert first == again and first != other
    assert first == sorted(first) and first[0] > 0 and first[-1] < 60
    assert 11_400 < len(first) < 12_600  # 12,000 expected; ±3 standard deviations is ±329
    gaps = [b - a for a, b in itertools.pairwise(first)]
    # exponential gaps: about 63 % shorter than the mean (a constant rate would give 0 % or 100 %)
    share = sum(gap < 1 / 200 for gap in gaps) / len(gaps)
    assert 0.60 < share < 0.66


def test_the_percentile_is_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert openloop.percentile(values, 0.99) == 99.0
    assert openloop.percentile(values, 0.50) == 50.0
    assert openloop.percentile([5.0], 0.99) == 5.0
    assert openloop.percentile([], 0.99) == 0.0


def test_latency_runs_from_the_scheduled_time_and_failures_are_counted_apart() -> None:
    # given a request that waited 900 ms for a connection and took 10 ms once sent, one answered
    # at once, one shed, one timed out and one refused
    tally = openloop.Tally(
        [
            openloop.Outcome(due=0.0, started=0.0, sent=0.9, done=0.91, status=200),
            openloop.Outcome(due=1.0, started=1.0, sent=1.0, done=1.01, status=200),
            openloop.Outcome(due=2.0, started=2.0, sent=2.0, done=2.001, status=503),
            openloop.Outcome(due=3.0, started=3.0, sent=3.0, failure="timeout"),
            openloop.Outcome(due=4.0, started=4.002, failure="connect"),
        ]
    )
    # when it is summed up
    summary = tally.summary(rate=1.0, seconds=5.0, scheduled=5, connections=2)
    # then the wait counts in the latency from the scheduled time, not in the one from the send
    assert summary["max_ms"] == pytest.approx(910.0)
    assert summary["p99_sent_ms"] == pytest.approx(10.0)
    assert (summary["ok"], summary["shed"], summary["other"]) == (2, 1, 0)
    assert (summary["timeout"], summary["connect"], summary["read"]) == (1, 1, 0)
    assert summary["schedule_lag_p99_ms"] == pytest.approx(2.0)


def test_the_row_counts_every_answer_but_2xx_and_shed_as_an_error() -> None:
    report = {
        "rate": 250.0, "seconds": 60.0, "scheduled": 15_000, "requests": 15_000, "ok": 14_990,
        "shed": 2, "other": 3, "connect": 1, "read": 1, "timeout": 3, "p50_ms": 20.0, "p90_ms": 40.0,
        "p99_ms": 90.0, "p99_sent_ms": 60.0, "schedule_lag_p99_ms": 1.5, "connections": 40,
        "duration_s": 60.0, "generator_cpu_s": 6.0,
    }  # fmt: skip
    row = open_loop_row("open loop, 70 % of capacity", report, capacity=357.0)
    assert row.errors == 8 and row.shed == 2 and row.served == 14_990
    assert row.p99_ms == 90.0 and row.concurrency == 40
    assert row.generator_cores == pytest.approx(0.1)
    assert "Poisson arrivals at 250 req/s (70 % of 357)" in row.note


async def _slow_server(port: int, delay: float) -> asyncio.Server:
    """An HTTP/1.1 server that answers one request at a time, each after ``delay``."""
    lock = asyncio.Lock()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while await reader.readuntil(b"\r\n\r\n"):
                async with lock:
                    await asyncio.sleep(delay)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", port)


def test_requests_start_on_schedule_and_a_wait_for_a_connection_counts() -> None:
    # given a server that takes 50 ms per request, and one connection at most: a closed loop
    # over it would report about 50 ms whatever the queue behind it
    async def scenario() -> dict[str, Any]:
        port = free_port(range(31000, 32000))
        server = await _slow_server(port, 0.05)
        try:
            return await openloop.run(
                f"http://127.0.0.1:{port}/", rate=40, seconds=1.0, headers={}, cafile=None,
                max_connections=1, timeout=5.0, seed=21,
            )  # fmt: skip
        finally:
            server.close()

    # when 40 req/s are offered for a second (twice what it can serve)
    summary = asyncio.run(scenario())
    # then every scheduled request started on time (late by far less than the queue below: the
    # generator never waits for an answer; the margin is for a shared, busy machine) and was answered
    assert summary["requests"] == summary["scheduled"] == summary["ok"]
    assert summary["schedule_lag_p99_ms"] < 100
    # and the latency from the scheduled time shows the queue that built up (about a second by
    # the end), several times the latency from the send, which a closed loop would report alone
    assert summary["p99_ms"] > 500
    assert summary["p99_ms"] > 3 * summary["p99_sent_ms"]
