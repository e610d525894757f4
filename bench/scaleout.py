"""Scale-out measured on one machine: the message list on 1, 2, 3 and 4 app servers, each capped
at the same CPU share, behind NGINX.

    .venv/bin/python -m bench.scaleout [--seconds 10 --rounds 4] [--out FILE]   (make bench runs it too)

On a 2-core machine, three uncapped servers share the same cores, so adding one adds nothing.
Capping each server's process group (cgroup v1 ``cpu`` controller: ``cpu.cfs_quota_us`` over
``cpu.cfs_period_us``; writable by root here) at a fraction of a core makes N servers N times
the CPU, as N machines would be; the shared parts (NGINX, PgBouncer, PostgreSQL, wrk) stay
uncapped and must keep up. Each server is a real gunicorn of ``config.wsgi`` with the cluster's
settings (DEBUG off, the same databases and Redis) on a free port, with worker recycling
(``max_requests``) off so that no worker restarts mid-cell; one NGINX (plain HTTP, least_conn,
keep-alive, no admission cap: requests queue) has one upstream per N.

What makes the figures hold up:

- **The same load per server.** wrk opens 16 connections per server (16 x N), so every server
  of every cell has as many requests in flight as the one-server baseline. With 64 connections
  for every N the one server held 64 at once and paid for it: its threads fought over the GIL
  within a quarter core, and every cell beat N x that baseline (1.15-1.21 efficiency, each
  server at its full quota).
- **Rotation.** The cells (N = 1..4) run in a different order every round (:func:`rotated`: the
  order shifted by one each round), so no cell always runs first after the warm-up or last on a
  warmer machine; every round is in the report, and the table gives the median per N.
- **Quota used.** Each server's CPU is read from its ``cpuacct`` group before and after each cell
  and set against its quota (``bench.cgroups.quota_used``): a server that did not use its share
  was waiting on something else, and the report shows it.
- **Measurement errors fail the run** (:func:`measurement_errors`): N identical servers capped
  at the same share cannot serve more than N times one, so an efficiency above 1.05 means the
  baseline or the cell was measured wrongly; so does a one-server baseline that did not use its
  quota (at most N x a server that was held back is no scale-out).

Without a writable cgroup v1 ``cpu`` and ``cpuacct`` controller the measurement is skipped with
one line saying so.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import nginx
from bench.cgroups import CappedGroup, cgroup_problem, quota_used
from bench.generators import wrk
from bench.servers import app_process_env, manage_shell, start_gunicorn, stop_side_servers, wait_http
from deploy.local import cluster
from deploy.local.host import free_port as _free_port

CORE_SHARE = float(os.environ.get("BENCH_SCALE_CORE_SHARE", "0.25"))
MAX_SERVERS = 4


_TAKEN: set[int] = set()


def free_port() -> int:
    """A port of this benchmark's own range (the other side servers take 29100+), below the
    ephemeral ports, and never one handed out before: NGINX binds its listen ports only once all
    are chosen."""
    for start in range(29600, 31000):
        port = _free_port(range(start, 31000))
        if port not in _TAKEN:
            _TAKEN.add(port)
            return port
    raise RuntimeError("no free port in 29600-30999")


BLOCK = """
    upstream servers{n} {{
        zone servers{n} 64k;
        least_conn;
{servers}
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://servers{n};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host 127.0.0.1;
        }}
    }}
"""


@contextlib.contextmanager
def capped_servers(count: int, cores: float) -> Iterator[tuple[dict[int, int], list[CappedGroup]]]:
    """``count`` app servers, each in its own capped group, and one NGINX with an upstream over
    the first N of them for every N; yields ({N: NGINX port}, the servers' groups in order)."""
    cfg = cluster.Settings()
    folder = nginx.make_folder("bench-scaleout-")
    processes = []
    groups: list[CappedGroup] = []
    try:
        ports = []
        for index in range(1, count + 1):
            port = free_port()
            env = {
                **app_process_env(cfg, name=f"scale{index}", folder=folder),
                "HEALTH_DRAIN_SECONDS": "0",
                # One process per capped server: a quarter of a core needs no second one.
                "GUNICORN_WORKERS": "1",
                "GUNICORN_THREADS": "4",
                "GUNICORN_ACCESS_LOG": "/dev/null",
                # No worker recycling: a worker restarting mid-cell would cost its server a
                # start-up and cold caches that the other cells do not pay.
                "GUNICORN_MAX_REQUESTS": "0",
                "GUNICORN_MAX_REQUESTS_JITTER": "0",
            }
            name = f"scale{index}"
            process = start_gunicorn(
                port=port, name=name, app="config.wsgi", env=env, log=folder / f"{name}.log"
            )
            processes.append(process)
            wait_http(port, "/health/live")
            group = CappedGroup(f"bench-scaleout-{os.getpid()}-{index}", cores)
            groups.append(group)
            group.add_tree(process.pid)
            ports.append(port)
        nginx_ports = {n: free_port() for n in range(1, count + 1)}
        blocks = "".join(
            BLOCK.format(
                n=n,
                port=nginx_ports[n],
                servers="\n".join(f"        server 127.0.0.1:{port};" for port in ports[:n]),
            )
            for n in nginx_ports
        )
        processes.append(nginx.start(folder, "    access_log off;\n" + blocks, workers="1", connections=8192))
        for port in nginx_ports.values():
            wait_http(port, "/health/live")
        yield nginx_ports, groups
    finally:
        stop_side_servers(processes, timeout=20)
        for group in groups:
            group.remove()


# --- the method's pure parts ----------------------------------------------------------------------

EFFICIENCY_LIMIT = 1.05  # above it, N capped servers did more than N x one: a measurement error
BASELINE_QUOTA_FLOOR = 0.90  # the one-server baseline must use at least this share of its quota


def rotated(cells: list[int], round_number: int) -> list[int]:
    """The cells' order in round ``round_number``: shifted by one each round, so that over
    len(cells) rounds every cell runs once in every position (first after the warm-up too)."""
    shift = round_number % len(cells) if cells else 0
    return cells[shift:] + cells[:shift]


def efficiencies(rates: dict[int, float]) -> dict[int, float]:
    """Throughput with N servers ÷ (N x one server), per N; empty without a one-server figure."""
    one = rates.get(1) or 0.0
    return {n: rate / (n * one) for n, rate in rates.items()} if one else {}


def measurement_errors(result: dict[str, Any]) -> list[str]:
    """Why the result cannot be a scale-out figure; empty when it can (or when nothing was
    measured: a quick run, or no writable cgroup)."""
    if not result or result.get("skipped"):
        return []
    rates = {int(n): rate for n, rate in result.get("rps", {}).items()}
    if not rates.get(1):
        return ["no one-server figure: nothing to set the others against"]
    errors = [
        f"{n} servers: efficiency {value:.3f} > {EFFICIENCY_LIMIT}: {n} identical servers capped at the "
        f"same share cannot serve more than {n} x one"
        for n, value in sorted(efficiencies(rates).items())
        if value > EFFICIENCY_LIMIT
    ]
    baseline_used = (result.get("quota_used") or {}).get("1")
    if baseline_used is not None and baseline_used < BASELINE_QUOTA_FLOOR:
        errors.append(
            f"the one-server baseline used {baseline_used:.0%} of its quota (under "
            f"{BASELINE_QUOTA_FLOOR:.0%}): it was held back by something else, so N x it is no scale-out"
        )
    return errors


def summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians per N over the rounds (rate, p99, the least quota any of its servers used) and
    the errors summed; every round is kept as it was measured."""
    cells = sorted({int(n) for one in rounds for n in one["cells"]})

    def values(n: int, key: str) -> list[Any]:
        return [one["cells"][str(n)][key] for one in rounds if str(n) in one["cells"]]

    return {
        "rps": {str(n): statistics.median(values(n, "rps")) for n in cells},
        "p99": {str(n): statistics.median(values(n, "p99")) for n in cells},
        "errors": {str(n): sum(values(n, "errors")) for n in cells},
        "quota_used": {
            str(n): statistics.median([min(used) for used in values(n, "quota_used")]) for n in cells
        },
        "cpu_ms": {str(n): statistics.median(values(n, "cpu_ms")) for n in cells},
        "rounds": rounds,
    }


# --- the measurement ------------------------------------------------------------------------------


def _cell(
    url: str, groups: list[CappedGroup], *, connections: int, seconds: float, headers: dict[str, str]
) -> dict[str, Any]:
    """One cell: wrk through N servers' NGINX, with each of the N servers' CPU over it."""
    before = [(group.usage_seconds(), *group.throttled()) for group in groups]
    started = time.monotonic()
    report = wrk(url, connections=connections, seconds=seconds, headers=headers, by_status=True)
    wall = time.monotonic() - started
    used, throttled, cpu = [], [], 0.0
    for group, (usage, periods, limited) in zip(groups, before, strict=True):
        now_periods, now_limited = group.throttled()
        spent = group.usage_seconds() - usage
        cpu += spent
        used.append(round(quota_used(usage_seconds=spent, wall_seconds=wall, cores=group.cores or 1.0), 3))
        # The share of the scheduler's periods in which the group ran out of quota.
        throttled.append(round((now_limited - limited) / max(now_periods - periods, 1), 3))
    errors = sum(int(report[key]) for key in ("connect", "read", "write", "timeout", "other", "shed"))
    return {
        "rps": report["ok"] / (report["duration_us"] / 1e6),
        "p99": report["p99_us"] / 1000,
        "errors": errors,
        "quota_used": used,
        "throttled": throttled,
        # The servers' own CPU per request served: the figure a super-linear cell is explained by.
        "cpu_ms": cpu * 1000 / max(int(report["ok"]), 1),
    }


def measure(
    *,
    api_headers: dict[str, str],
    messages_path: str,
    seconds: float = 10,
    rounds: int = MAX_SERVERS,
    connections_per_server: int = 16,
) -> dict[str, Any]:
    """The message list through NGINX on 1..4 capped servers, in rotated rounds; medians per N."""
    problem = cgroup_problem()
    if problem:
        print(f"  scale-out skipped: {problem}", flush=True)
        return {"skipped": problem}
    headers = {name: value for name, value in api_headers.items() if name != "X-RateLimit-Bypass"}
    measured: list[dict[str, Any]] = []
    load_before = os.getloadavg()
    with capped_servers(MAX_SERVERS, CORE_SHARE) as (nginx_ports, groups):
        for port in nginx_ports.values():  # warm every server and connection pool
            wrk(f"http://127.0.0.1:{port}{messages_path}", connections=16, seconds=2, headers=headers,
                by_status=True)  # fmt: skip
        for round_number in range(rounds):
            order = rotated(list(nginx_ports), round_number)
            cells: dict[str, Any] = {}
            for n in order:
                cell = _cell(
                    f"http://127.0.0.1:{nginx_ports[n]}{messages_path}", groups[:n],
                    connections=connections_per_server * n, seconds=seconds, headers=headers,
                )  # fmt: skip
                cells[str(n)] = cell
                print(f"  scale-out {n} server(s), round {round_number + 1}: {cell['rps']:,.0f} served/s, "
                      f"p99 {cell['p99']:.0f} ms, quota used {cell['quota_used']}", flush=True)  # fmt: skip
            measured.append({"order": order, "cells": cells})
    result = summarise(measured)
    result["how"] = (
        f"Each app server is one gunicorn process (gthread, 4 threads, `max_requests` off) of the real "
        f"app in its own cgroup, capped at {CORE_SHARE:g} of a core (`cpu.cfs_quota_us`), its CPU read "
        f"from `cpuacct.usage` around every cell; NGINX (plain HTTP, least_conn, keep-alive; no "
        f"`max_conns`: every request waits its turn), PgBouncer, PostgreSQL and wrk are not capped. "
        f"wrk with {connections_per_server} connections per server (-c{connections_per_server} x N) for "
        f"{seconds:g} s per cell, {rounds} rounds in rotated order, medians; "
        f"load average {', '.join(f'{v:.1f}' for v in load_before)} before, "
        f"{', '.join(f'{v:.1f}' for v in os.getloadavg())} after."
    )
    result["measurement_errors"] = measurement_errors(result)
    return result


# Prints a new API token of the demo user, as JSON.
_MINT_CODE = (
    "import json; from django.conf import settings; from messaging.models import StaffMember; "
    "from messaging.tokens.services import api_token_create; "
    "print(json.dumps(api_token_create(user=StaffMember.objects.get("
    "user__username=settings.MESSAGING_DEMO_USERNAME).user)))"
)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Scale-out on CPU-capped servers (see bench/scaleout.py).")
    parser.add_argument("--seconds", type=float, default=10.0, help="per cell")
    parser.add_argument("--rounds", type=int, default=MAX_SERVERS, help="rotated rounds")
    parser.add_argument("--out", type=Path, help="write the report's section (markdown) here")
    args = parser.parse_args(argv)
    token = manage_shell(cluster.Settings(), _MINT_CODE)
    result = measure(
        api_headers={"Authorization": f"Bearer {token}"},
        messages_path="/api/messages?limit=50",
        seconds=args.seconds,
        rounds=args.rounds,
    )
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(markdown(result))
    for error in result.get("measurement_errors", []):
        print(f"scale-out: measurement error: {error}", file=sys.stderr)
    return 1 if result.get("measurement_errors") else 0


def markdown(result: dict[str, Any]) -> str:
    """The result as the report's tables: medians per N, then every round as measured."""
    if result.get("skipped"):
        return f"Skipped: {result['skipped']}\n"
    rates = {int(n): rate for n, rate in result["rps"].items()}
    one = rates.get(1) or 0.0
    quota = result.get("quota_used") or {}

    def cpu_text(n: int) -> str:
        value = (result.get("cpu_ms") or {}).get(str(n))
        return "-" if value is None else f"{value:.2f}"

    lines = [
        result.get("how", ""),
        "",
        "| servers | served 2xx/s (median) | speed-up vs one | efficiency (÷ N x one) | least quota used "
        "by a server (median) | servers' CPU ms per request (median) | p99 ms | errors |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in sorted(rates):
        speedup = rates[n] / one if one else 0.0
        used = quota.get(str(n))
        lines.append(
            f"| {n} | {rates[n]:,.0f} | {speedup:.2f}x | {speedup / n:.2f} | "
            f"{'-' if used is None else f'{used:.0%}'} | {cpu_text(n)} | {result['p99'][str(n)]:,.1f} | "
            f"{result['errors'][str(n)]} |"
        )
    rounds = result.get("rounds") or []
    if rounds:
        cells = sorted(rates)
        lines += [
            "",
            "Every round (order run; served 2xx/s, each server's share of its quota used):",
            "",
            "| round | order | " + " | ".join(f"{n} server{'s' if n > 1 else ''}" for n in cells) + " |",
            "|---:|---|" + "---|" * len(cells),
        ]
        for number, measured in enumerate(rounds, start=1):
            row = []
            for n in cells:
                cell = measured["cells"].get(str(n))
                used = ", ".join(f"{value:.0%}" for value in cell["quota_used"]) if cell else ""
                row.append(f"{cell['rps']:,.0f} ({used})" if cell else "-")
            order = " → ".join(str(n) for n in measured["order"])
            lines.append(f"| {number} | {order} | " + " | ".join(row) + " |")
    errors = result.get("measurement_errors") or []
    if errors:
        lines += ["", "**Measurement errors (the run fails):**", "", *[f"- {error}" for error in errors]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
