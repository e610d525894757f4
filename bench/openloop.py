"""An open-loop load generator: requests start on a precomputed schedule, never waiting for answers.

    .venv/bin/python -m bench.openloop --url https://10.213.0.10:28443/api/messages?limit=50 \
        --rate 250 --seconds 60 --header "Authorization: Bearer ..." --cafile tls.crt

Why our own (ADR 0016): a closed loop (wrk, or wrk with a think time before each request, the
``wrk_paced.lua`` this replaces) sends a connection's next request only after its answer, so a
slow server is offered less and its queueing never shows in the latency (coordinated omission).
Here the arrival times are drawn first (:func:`arrivals`: a Poisson process at ``--rate``, from a
fixed seed), and each request is started at its time whatever the others are doing, on a kept-alive
connection that is idle or a new one (at most ``--max-connections`` in flight; a request waiting
for one is still late). Its latency is measured from its scheduled time to the end of its answer,
so every wait it met counts: in the generator, for a connection, in NGINX's queue, in the app.

One process, one asyncio loop, HTTP/1.1 parsed by h11 (already in the lock): the generator is
small enough to read, and its own lateness (``schedule_lag``: how late a request was started
against its time) is reported so that a generator that fell behind cannot pass for a slow
server. ``bench.generators.open_loop`` runs it in a cgroup of its own and reads its CPU there.

With ``--wait-for-go`` it reads one line from standard input before its clock starts, so that
the caller can put it into that cgroup first. It prints one line, ``OPENLOOP {json}``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import ssl
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import h11

# --- the pure parts --------------------------------------------------------------------------------


def arrivals(*, rate: float, seconds: float, seed: int) -> list[float]:
    """Start times (seconds from the start) of a Poisson process at ``rate`` per second, drawn
    once from ``seed``: independent users, each arriving whatever the others wait for."""
    draw = random.Random(seed)
    times: list[float] = []
    now = 0.0
    while True:
        now += draw.expovariate(rate)
        if now >= seconds:
            return times
        times.append(now)


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (``share`` 0.99: the p99) of ``values``; 0.0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(math.ceil(share * len(ordered)) - 1, 0)]


@dataclass
class Outcome:
    """One scheduled request: when it was due, started, sent and done (loop clock), and how it ended."""

    due: float
    started: float  # when the generator got to it: late if the loop itself was behind
    sent: float | None = None  # None: it never got a connection
    done: float | None = None
    status: int | None = None  # the HTTP status, None when no answer came
    failure: str = ""  # "connect", "read", "timeout" when no answer came


@dataclass
class Tally:
    """What the run's outcomes add up to, with latencies in milliseconds."""

    outcomes: list[Outcome] = field(default_factory=list)

    def summary(self, *, rate: float, seconds: float, scheduled: int, connections: int) -> dict[str, Any]:
        answered = [o for o in self.outcomes if o.status is not None and o.done is not None]
        from_due = [(o.done - o.due) * 1000 for o in answered if o.done is not None]
        from_sent = [(o.done - o.sent) * 1000 for o in answered if o.done is not None and o.sent is not None]
        lag = [(o.started - o.due) * 1000 for o in self.outcomes]
        failures = [o.failure for o in self.outcomes if o.status is None]
        return {
            "rate": rate,
            "seconds": seconds,
            "scheduled": scheduled,
            "requests": len(self.outcomes),
            "ok": sum(1 for o in answered if o.status is not None and 200 <= o.status < 300),
            "shed": sum(1 for o in answered if o.status == 503),
            "other": sum(
                1 for o in answered if o.status is not None and not 200 <= o.status < 300 and o.status != 503
            ),
            "connect": failures.count("connect"),
            "read": failures.count("read"),
            "timeout": failures.count("timeout"),
            "p50_ms": percentile(from_due, 0.50),
            "p90_ms": percentile(from_due, 0.90),
            "p99_ms": percentile(from_due, 0.99),
            "max_ms": max(from_due, default=0.0),
            "p50_sent_ms": percentile(from_sent, 0.50),
            "p99_sent_ms": percentile(from_sent, 0.99),
            "schedule_lag_p99_ms": percentile(lag, 0.99),
            "connections": connections,
        }


# --- HTTP/1.1 over asyncio --------------------------------------------------------------------------


class Connection:
    """One kept-alive HTTP/1.1 connection; ``usable`` until the server or an error closes it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.protocol = h11.Connection(h11.CLIENT)
        self.usable = True

    async def get(self, target: str, headers: list[tuple[str, str]]) -> int:
        request = h11.Request(method="GET", target=target, headers=headers)
        self.writer.write(self.protocol.send(request) + (self.protocol.send(h11.EndOfMessage()) or b""))
        await self.writer.drain()
        status = 0
        while True:
            event = self.protocol.next_event()
            if event is h11.NEED_DATA:
                self.protocol.receive_data(await self.reader.read(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("the server closed the connection before answering")
        if self.protocol.our_state is h11.DONE and self.protocol.their_state is h11.DONE:
            self.protocol.start_next_cycle()
        else:  # "Connection: close" or an answer without a length
            self.usable = False
        return status

    def close(self) -> None:
        self.usable = False
        with contextlib.suppress(Exception):
            self.writer.close()


class Pool:
    """Idle kept-alive connections, and a cap on requests in flight (each holds one connection)."""

    def __init__(self, host: str, port: int, tls: ssl.SSLContext | None, *, limit: int) -> None:
        self.host, self.port, self.tls = host, port, tls
        self.idle: list[Connection] = []
        self.slots = asyncio.Semaphore(limit)
        self.opened = 0

    async def connection(self) -> Connection:
        while self.idle:
            connection = self.idle.pop()
            if connection.usable and not connection.reader.at_eof():
                return connection
            connection.close()
        reader, writer = await asyncio.open_connection(
            self.host, self.port, ssl=self.tls, server_hostname=self.host if self.tls else None
        )
        self.opened += 1
        return Connection(reader, writer)

    def give_back(self, connection: Connection) -> None:
        if connection.usable:
            self.idle.append(connection)
        else:
            connection.close()


async def _one(
    pool: Pool, outcome: Outcome, *, target: str, headers: list[tuple[str, str]], timeout: float
) -> None:
    loop = asyncio.get_running_loop()
    connection: Connection | None = None
    try:
        async with asyncio.timeout(timeout - (loop.time() - outcome.due)):
            async with pool.slots:
                try:
                    connection = await pool.connection()
                except (OSError, ssl.SSLError):
                    outcome.failure = "connect"
                    return
                outcome.sent = loop.time()
                try:
                    outcome.status = await connection.get(target, headers)
                except (OSError, ssl.SSLError, h11.ProtocolError, ConnectionError):
                    connection.close()
                    outcome.failure = "read"
                    return
                outcome.done = loop.time()
                pool.give_back(connection)
                connection = None
    except TimeoutError:
        outcome.failure = "timeout"
    finally:
        if connection is not None:  # cut off mid-answer: the connection is in an unknown state
            connection.close()


async def run(
    url: str, *, rate: float, seconds: float, headers: dict[str, str], cafile: str | None,
    max_connections: int, timeout: float, seed: int,
) -> dict[str, Any]:  # fmt: skip
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    host, port = parts.hostname or "127.0.0.1", parts.port or (443 if secure else 80)
    tls = ssl.create_default_context(cafile=cafile) if secure else None
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    request_headers = [("Host", f"{host}:{port}"), *headers.items()]
    schedule = arrivals(rate=rate, seconds=seconds, seed=seed)
    pool = Pool(host, port, tls, limit=max_connections)
    tally = Tally()
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()
    start = loop.time() + 0.1
    for offset in schedule:
        due = start + offset
        if due > loop.time():
            await asyncio.sleep(due - loop.time())
        outcome = Outcome(due=due, started=loop.time())
        tally.outcomes.append(outcome)
        task = asyncio.create_task(
            _one(pool, outcome, target=target, headers=request_headers, timeout=timeout)
        )
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:  # every request is bounded by its own timeout from its scheduled time
        await asyncio.wait(set(tasks), timeout=timeout + 5)
    for connection in pool.idle:
        connection.close()
    summary = tally.summary(rate=rate, seconds=seconds, scheduled=len(schedule), connections=pool.opened)
    summary["duration_s"] = loop.time() - start
    return summary


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="An open-loop load generator (see bench/openloop.py).")
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, required=True, help="requests per second (Poisson arrivals)")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--header", action="append", default=[], help="'Name: value', repeatable")
    parser.add_argument("--cafile", help="the certificate to trust for https")
    parser.add_argument("--max-connections", type=int, default=5000, help="requests in flight at most")
    parser.add_argument("--timeout", type=float, default=10.0, help="per request, from its scheduled time")
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--wait-for-go", action="store_true", help="read one line from stdin first")
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.seconds <= 0:
        parser.error("--rate and --seconds must be positive")
    headers = dict(line.split(":", 1) for line in args.header)
    if args.wait_for_go:
        sys.stdin.readline()
    started = time.monotonic()
    summary = asyncio.run(
        run(
            args.url, rate=args.rate, seconds=args.seconds,
            headers={name.strip(): value.strip() for name, value in headers.items()}, cafile=args.cafile,
            max_connections=args.max_connections, timeout=args.timeout, seed=args.seed,
        )
    )  # fmt: skip
    summary["wall_s"] = time.monotonic() - started
    print("OPENLOOP " + json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
