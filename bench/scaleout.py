"""Scale-out measured on one machine: the message list on 1, 2, 3 and 4 app servers, each capped
at the same CPU share, behind NGINX.

    .venv/bin/python -m bench.scaleout            # prints the table (make bench runs it too)

On a 2-core machine, three uncapped servers share the same cores, so adding one adds nothing.
Capping each server's process group (cgroup v1 ``cpu`` controller: ``cpu.cfs_quota_us`` over
``cpu.cfs_period_us``; writable by root here) at a fraction of a core makes N servers N times
the CPU, as N machines would be; the shared parts (NGINX, PgBouncer, PostgreSQL, wrk) stay
uncapped and must keep up. Each server is a real gunicorn of ``config.wsgi`` with the cluster's
settings (DEBUG off, the same databases and Redis) on a free port; one NGINX (plain HTTP,
least_conn, keep-alive, no admission cap: requests queue) has one upstream per N. The N values are
measured in interleaved rounds and the median per N is reported, with the scaling efficiency
(throughput with N servers ÷ N x one server). Without a writable cgroup v1 ``cpu`` controller
the measurement is skipped with one line saying so.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import nginx
from bench.cgroups import CappedGroup, cgroup_problem
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
def capped_servers(count: int, cores: float) -> Iterator[dict[int, int]]:
    """``count`` app servers, each in its own capped group, and one NGINX with an upstream over
    the first N of them for every N; yields {N: NGINX port}."""
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
        yield nginx_ports
    finally:
        stop_side_servers(processes, timeout=20)
        for group in groups:
            group.remove()


def measure(
    *,
    api_headers: dict[str, str],
    messages_path: str,
    seconds: int = 10,
    rounds: int = 3,
    connections: int = 64,
) -> dict[str, Any]:
    """The message list through NGINX on 1..4 capped servers; medians of interleaved rounds."""
    problem = cgroup_problem()
    if problem:
        print(f"  scale-out skipped: {problem}", flush=True)
        return {"skipped": problem}
    headers = {name: value for name, value in api_headers.items() if name != "X-RateLimit-Bypass"}
    served: dict[int, list[float]] = {n: [] for n in range(1, MAX_SERVERS + 1)}
    p99: dict[int, list[float]] = {n: [] for n in range(1, MAX_SERVERS + 1)}
    errors: dict[int, int] = dict.fromkeys(range(1, MAX_SERVERS + 1), 0)
    load_before = os.getloadavg()
    with capped_servers(MAX_SERVERS, CORE_SHARE) as nginx_ports:
        for port in nginx_ports.values():  # warm every server and connection pool
            wrk(
                f"http://127.0.0.1:{port}{messages_path}",
                connections=16,
                seconds=2,
                headers=headers,
                by_status=True,
            )
        for round_number in range(rounds):
            order = list(nginx_ports) if round_number % 2 == 0 else list(reversed(nginx_ports))
            for n in order:
                report = wrk(
                    f"http://127.0.0.1:{nginx_ports[n]}{messages_path}", connections=connections,
                    seconds=seconds, headers=headers, by_status=True,
                )  # fmt: skip
                duration = report["duration_us"] / 1e6
                served[n].append(report["ok"] / duration)
                p99[n].append(report["p99_us"] / 1000)
                errors[n] += int(report["connect"] + report["read"] + report["write"] + report["timeout"])
                errors[n] += int(report["other"] + report["shed"])
                print(f"  scale-out {n} server(s), round {round_number + 1}: {served[n][-1]:,.0f} served/s, "
                      f"p99 {p99[n][-1]:.0f} ms", flush=True)  # fmt: skip
    return {
        "rps": {str(n): statistics.median(values) for n, values in served.items()},
        "p99": {str(n): statistics.median(values) for n, values in p99.items()},
        "errors": {str(n): count for n, count in errors.items()},
        "how": (
            f"Each app server is one gunicorn process (gthread, 4 threads) of the real app in its own "
            f"cgroup, capped at {CORE_SHARE:g} of a core (`cpu.cfs_quota_us`); NGINX (plain HTTP, "
            f"least_conn, keep-alive; no `max_conns`: every request waits its turn), PgBouncer, "
            f"PostgreSQL and wrk are not capped. "
            f"wrk -c{connections} for {seconds} s per cell, {rounds} interleaved rounds, medians; load "
            f"average {', '.join(f'{v:.1f}' for v in load_before)} before, "
            f"{', '.join(f'{v:.1f}' for v in os.getloadavg())} after."
        ),
    }


# Prints a new API token of the demo user, as JSON.
_MINT_CODE = (
    "import json; from django.conf import settings; from messaging.models import StaffMember; "
    "from messaging.tokens.services import api_token_create; "
    "print(json.dumps(api_token_create(user=StaffMember.objects.get("
    "user__username=settings.MESSAGING_DEMO_USERNAME).user)))"
)


def main() -> int:
    token = manage_shell(cluster.Settings(), _MINT_CODE)
    result = measure(api_headers={"Authorization": f"Bearer {token}"}, messages_path="/api/messages?limit=50")
    print(json.dumps(result, indent=2))
    if len(sys.argv) > 2 and sys.argv[1] == "--out":
        Path(sys.argv[2]).write_text(markdown(result))
    return 0


def markdown(result: dict[str, Any]) -> str:
    """The result as the report's table."""
    if result.get("skipped"):
        return f"Skipped: {result['skipped']}\n"
    rates = {int(n): rate for n, rate in result["rps"].items()}
    one = rates.get(1) or 0.0
    lines = [
        result.get("how", ""),
        "",
        "| servers | served 2xx/s (median) | speed-up vs one | efficiency (÷ N x one) | p99 ms | errors |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for n in sorted(rates):
        speedup = rates[n] / one if one else 0.0
        lines.append(
            f"| {n} | {rates[n]:,.0f} | {speedup:.2f}x | {speedup / n:.2f} | {result['p99'][str(n)]:,.1f} | "
            f"{result['errors'][str(n)]} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
