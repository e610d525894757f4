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
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from bench import nginx
from deploy.local import cluster
from deploy.local.host import free_port as _free_port
from deploy.local.host import stop_process

REPO = Path(__file__).resolve().parent.parent
CGROUP_CPU = Path("/sys/fs/cgroup/cpu")
GUNICORN = str(REPO / ".venv" / "bin" / "gunicorn")
GUNICORN_CONF = REPO / "deploy" / "gunicorn" / "gunicorn.conf.py"
WRK = "/usr/bin/wrk"
CORE_SHARE = float(os.environ.get("BENCH_SCALE_CORE_SHARE", "0.25"))
MAX_SERVERS = 4


_TAKEN: set[int] = set()


def free_port() -> int:
    """A port of the bench's own range (bench/run.py uses 29100+), below the ephemeral ports, and
    never one handed out before: NGINX binds its listen ports only once all are chosen."""
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


def cgroup_problem() -> str | None:
    """Why capped servers cannot be measured here, or None."""
    quota = CGROUP_CPU / "cpu.cfs_quota_us"
    if not quota.exists():
        return f"no cgroup v1 cpu controller at {CGROUP_CPU} (cgroup v2 cpu.max is not handled)"
    if not os.access(CGROUP_CPU, os.W_OK):
        return f"{CGROUP_CPU} is not writable (run as root)"
    return None


class CappedGroup:
    """A cgroup v1 ``cpu`` group limited to ``cores`` of CPU time."""

    def __init__(self, name: str, cores: float) -> None:
        self.path = CGROUP_CPU / name
        self.path.mkdir(exist_ok=True)
        period = int((self.path / "cpu.cfs_period_us").read_text())
        (self.path / "cpu.cfs_quota_us").write_text(str(int(period * cores)))
        # A high weight so that a busy machine still gives each server its quota: the quota caps
        # the four together at one core, so neighbours keep the rest.
        (self.path / "cpu.shares").write_text("4096")

    def add_tree(self, pid: int) -> None:
        process = psutil.Process(pid)
        for member in [process, *process.children(recursive=True)]:
            with contextlib.suppress(OSError):
                (self.path / "cgroup.procs").write_text(str(member.pid))

    def remove(self) -> None:
        # Anything still inside goes back to the root group first; then the group can go.
        for line in (self.path / "cgroup.procs").read_text().split():
            with contextlib.suppress(OSError):
                (CGROUP_CPU / "cgroup.procs").write_text(line)
        with contextlib.suppress(OSError):
            self.path.rmdir()


def capped_process_env(cfg: cluster.Settings, *, name: str, folder: Path) -> dict[str, str]:
    """The environment of a benchmark's own app process on the running cluster: its settings
    with DEBUG off (production-shaped), its server name, a metrics folder of its own."""
    metrics = folder / f"metrics-{name}"
    metrics.mkdir()
    return {
        **os.environ,
        **cfg.app_env(),
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DJANGO_DEBUG": "0",
        "APP_SERVER_NAME": name,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
    }


def _wait_http(port: int, path: str, timeout: float = 60) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code < 500:
                return
        time.sleep(0.2)
    raise RuntimeError(f"nothing answered {path} on {port} within {timeout:.0f}s")


@contextlib.contextmanager
def capped_servers(count: int, cores: float) -> Iterator[dict[int, int]]:
    """``count`` app servers, each in its own capped group, and one NGINX with an upstream over
    the first N of them for every N; yields {N: NGINX port}."""
    cfg = cluster.Settings()
    folder = nginx.make_folder("bench-scaleout-")
    processes: list[subprocess.Popen[bytes]] = []
    groups: list[CappedGroup] = []
    try:
        ports = []
        for index in range(1, count + 1):
            port = free_port()
            env = {
                **capped_process_env(cfg, name=f"scale{index}", folder=folder),
                "HEALTH_DRAIN_SECONDS": "0",
                # One process per capped server: a quarter of a core needs no second one.
                "GUNICORN_WORKERS": "1",
                "GUNICORN_THREADS": "4",
                "GUNICORN_ACCESS_LOG": "/dev/null",
            }
            argv = [GUNICORN, "-c", str(GUNICORN_CONF), "--bind", f"127.0.0.1:{port}",
                    "--name", f"scale{index}", "config.wsgi"]  # fmt: skip
            log = (folder / f"scale{index}.log").open("ab")
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
            processes.append(process)
            _wait_http(port, "/health/live")
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
            _wait_http(port, "/health/live")
        yield nginx_ports
    finally:
        for process in reversed(processes):
            stop_process(process, signal.SIGQUIT if process is processes[-1] else signal.SIGTERM, timeout=20)
        for group in groups:
            group.remove()


def wrk(url: str, headers: dict[str, str], *, connections: int, seconds: int) -> dict[str, Any]:
    argv = [WRK, "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
            "-s", str(REPO / "bench" / "wrk_status.lua")]  # fmt: skip
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    result = subprocess.run([*argv, url], capture_output=True, text=True, timeout=seconds + 60, check=False)
    for line in result.stdout.splitlines():
        if line.startswith("WRKJSON "):
            report: dict[str, Any] = json.loads(line.removeprefix("WRKJSON "))
            return report
    raise RuntimeError(f"wrk gave no report: {(result.stderr or result.stdout).strip()[-300:]}")


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
            wrk(f"http://127.0.0.1:{port}{messages_path}", headers, connections=16, seconds=2)
        for round_number in range(rounds):
            order = list(nginx_ports) if round_number % 2 == 0 else list(reversed(nginx_ports))
            for n in order:
                report = wrk(
                    f"http://127.0.0.1:{nginx_ports[n]}{messages_path}", headers, connections=connections,
                    seconds=seconds,
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


def main() -> int:
    import requests

    cfg = cluster.Settings()
    fixture = json.loads(subprocess.run(
        [sys.executable, "manage.py", "shell", "-c",
         "import json; from django.conf import settings; from messaging.models import StaffMember; "
         "from messaging.services import api_token_create; "
         "print(json.dumps(api_token_create(user=StaffMember.objects.get("
         "user__username=settings.MESSAGING_DEMO_USERNAME).user)))"],
        capture_output=True, text=True, cwd=REPO, check=True,
        env={**os.environ, **cfg.app_env(), "DJANGO_SETTINGS_MODULE": "config.settings.local"},
    ).stdout.strip().splitlines()[-1])  # fmt: skip
    del requests
    result = measure(
        api_headers={"Authorization": f"Bearer {fixture}"}, messages_path="/api/messages?limit=50"
    )
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
