"""Profile one message-list request inside the app, as an app server runs it (DEBUG off).

    .venv/bin/python -m bench.profile_request [--requests 300] [--out FILE]

Calls the project's WSGI application directly (``config.wsgi``: every middleware, the router,
the real replica and primary through PgBouncer, Redis) with a bearer token, the way gunicorn
does, in the same settings the cluster's app servers use (``config.settings.local``, DEBUG
off, prometheus-client in multiprocess mode on a temporary folder). It reports the mean
in-process CPU and wall time per request without the profiler, the SQL queries one request
makes, then cProfile's view of the same requests: the functions with the most own time and the
most cumulative time. Run it against the running cluster (``make up``) with the benchmark's
data (``bench.prepare``).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from bench.inprocess import django_environment

PATH = "/api/messages"
QUERY = "limit=50"


def _environ(token: str) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": PATH,
        "QUERY_STRING": QUERY,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "28001",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_AUTHORIZATION": f"Bearer {token}",
        "HTTP_X_REQUEST_ID": "profile-request-0001",
        "HTTP_X_FORWARDED_FOR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def _one(application: Callable[..., Iterable[bytes]], token: str) -> int:
    status: list[str] = []

    def start_response(value: str, _headers: list[tuple[str, str]], _exc: object = None) -> None:
        status.append(value)

    body = application(_environ(token), start_response)
    size = sum(len(chunk) for chunk in body)
    close = getattr(body, "close", None)
    if close is not None:
        close()
    if not status or not status[0].startswith("200"):
        raise RuntimeError(f"{PATH} answered {status[:1]} ({size} bytes)")
    return size


def _stats_table(profile: cProfile.Profile, *, sort: str, limit: int, requests: int) -> str:
    stats = pstats.Stats(profile)
    stats.sort_stats(sort)
    rows = []
    for func in stats.fcn_list[:limit]:  # type: ignore[attr-defined]
        calls, _primitive, own, cumulative, _callers = stats.stats[func]  # type: ignore[attr-defined]
        filename, line, name = func
        where = filename.split("site-packages/")[-1].split("/work/")[-1] if filename != "~" else ""
        short = "/".join(where.split("/")[-3:])
        label = f"{short}:{line}({name})" if short else name
        rows.append(
            f"| `{label}` | {calls / requests:.1f} | {own * 1e6 / requests:,.0f} | "
            f"{cumulative * 1e6 / requests:,.0f} |"
        )
    header = "| function | calls/request | own µs/request | cumulative µs/request |\n|---|---:|---:|---:|"
    return header + "\n" + "\n".join(rows)


def profile(requests: int) -> str:
    django_environment("profile")
    import logging

    from django.conf import settings
    from django.db import connections, reset_queries
    from django.test.utils import CaptureQueriesContext

    from config.wsgi import application  # django.setup() runs here
    from messaging.models import StaffMember
    from messaging.tokens.services import api_token_create

    # The per-request log line is part of the cost; send it where gunicorn's stderr would go,
    # but not onto this report's terminal.
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 (lives as long as the process)
    staff = StaffMember.objects.select_related("user").get(user__username=settings.MESSAGING_DEMO_USERNAME)
    token = api_token_create(user=staff.user)
    for _ in range(50):  # warm: connections, imports, caches
        size = _one(application, token)
    captured = []
    for alias in connections:
        with CaptureQueriesContext(connections[alias]) as context:
            _one(application, token)
        captured += [(alias, query["sql"], query["time"]) for query in context.captured_queries]
    reset_queries()

    started_cpu, started_wall = time.process_time(), time.perf_counter()
    for _ in range(requests):
        _one(application, token)
    cpu_us = (time.process_time() - started_cpu) * 1e6 / requests
    wall_us = (time.perf_counter() - started_wall) * 1e6 / requests

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(requests):
        _one(application, token)
    profiler.disable()

    lines = [
        f"`{PATH}?{QUERY}` ({size:,} bytes of JSON), {requests} requests in one process after a "
        f"warm-up, DEBUG={settings.DEBUG}: **{cpu_us:,.0f} µs CPU** and {wall_us:,.0f} µs wall per "
        "request without the profiler.",
        "",
        f"SQL per request ({len(captured)}; captured once on each alias):",
        "",
    ]
    lines += [f"- `{alias}` {seconds}s: `{sql[:160]}`" for alias, sql, seconds in captured]
    lines += [
        "",
        "Own time (cProfile, per request; the profiler itself inflates small calls):",
        "",
        _stats_table(profiler, sort="tottime", limit=15, requests=requests),
        "",
        "Cumulative time:",
        "",
        _stats_table(profiler, sort="cumulative", limit=30, requests=requests),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Profile one message-list request (see the module).")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    text = profile(args.requests)
    if args.out:
        args.out.write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
