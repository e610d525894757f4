"""The load generators: wrk (C, epoll: floods and thousands of kept-alive connections), Locust
(the mixed scenario of ``bench/locustfile.py``) and the open-loop generator (``bench.openloop``),
each run as a child process and read back.

The load test's wrk reports through one of its Lua scripts, which print a line ``WRKJSON {...}``
at the end:
``wrk_report.lua`` (requests, latency percentiles, socket errors) and ``wrk_status.lua`` (the
same, with the answers split into served 2xx, shed 503 and anything else). wrk is a closed loop:
each connection sends its next request after the last answer. The open loop is
``bench.openloop`` (:func:`open_loop`): arrivals on a precomputed schedule, latency from each
request's scheduled time, run in a cgroup of its own whose CPU is read back (ADR 0016). The
micro-benchmarks read wrk's own ``--latency`` text instead (:func:`wrk_latency`). Locust writes
its summary as CSV files under a prefix.

Every caller sends NGINX's rate-limit bypass header (``X-RateLimit-Bypass``) where it goes
through the cluster's edge; without it the per-client limits would be what is measured.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.cgroups import CappedGroup, cgroup_problem
from deploy.local.cluster import REPO, VENV_BIN

WRK = "/usr/bin/wrk"
LOCUST = str(VENV_BIN / "locust")
SCRIPTS = REPO / "bench"


def wrk(
    url: str,
    *,
    connections: int,
    seconds: float,
    headers: dict[str, str],
    by_status: bool = False,
) -> dict[str, Any]:
    """One wrk run: a closed loop of ``connections``, each sending again once answered."""
    threads = max(1, min(2, connections))
    script = "wrk_status.lua" if by_status else "wrk_report.lua"
    argv = [WRK, f"-t{threads}", f"-c{connections}", f"-d{max(int(seconds), 1)}s", "--timeout", "10s",
            "-s", str(SCRIPTS / script)]  # fmt: skip
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    argv.append(url)
    result = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120, check=False)
    for line in result.stdout.splitlines():
        if line.startswith("WRKJSON "):
            report: dict[str, Any] = json.loads(line.removeprefix("WRKJSON "))
            return report
    raise RuntimeError(f"wrk gave no report: {(result.stderr or result.stdout).strip()[-300:]}")


@dataclass(frozen=True)
class WrkLatency:
    """What ``wrk --latency`` prints without a script; None where the output has no such line."""

    rps: float | None
    p99_ms: float | None
    requests: int | None
    non_2xx: int  # "Non-2xx or 3xx responses"
    socket_errors: int  # connect, read, write and timeout errors together
    output: str  # the whole text, for an error message


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def read_wrk_latency(output: str) -> WrkLatency:
    """Reads ``wrk --latency`` output, the p99 in milliseconds whatever unit wrk printed it in."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    total = re.search(r"^\s+(\d+) requests in", output, re.MULTILINE)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return WrkLatency(
        rps=float(rps.group(1)) if rps else None,
        p99_ms=float(p99.group(1)) * _UNITS_MS[p99.group(2)] if p99 else None,
        requests=int(total.group(1)) if total else None,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(value) for value in sockets.groups()) if sockets else 0,
        output=output,
    )


def wrk_latency(
    url: str,
    *,
    connections: int,
    seconds: float,
    headers: dict[str, str] | None = None,
    timeout: float | None = None,
) -> WrkLatency:
    """One wrk run with two threads and its ``--latency`` report; ``timeout``: wrk's own per
    request (its default is 2 s)."""
    argv = [WRK, "-t2", f"-c{connections}", f"-d{seconds:g}s"]
    if timeout is not None:
        argv += ["--timeout", f"{timeout:g}s"]
    argv += [
        "--latency",
        *[arg for name, value in (headers or {}).items() for arg in ("-H", f"{name}: {value}")],
    ]
    argv.append(url)
    output = subprocess.run(
        argv, capture_output=True, text=True, check=True, timeout=seconds + (timeout or 0) + 60
    ).stdout
    return read_wrk_latency(output)


def locust(
    *, users: int, seconds: float, host: str, prefix: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Locust headless for ``seconds`` with ``users`` (spawned at a tenth of them a second); its
    CSV summary goes to ``prefix`` (read it with :func:`locust_stats`)."""
    argv = [LOCUST, "-f", str(SCRIPTS / "locustfile.py"), "--headless", "--only-summary",
            "-u", str(users), "-r", str(max(users // 10, 1)), "-t", f"{int(seconds)}s",
            "--host", host, "--csv", str(prefix),
            "--stop-timeout", "5", "--loglevel", "WARNING"]  # fmt: skip
    return subprocess.run(
        argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=seconds + 180, check=False
    )


def locust_stats(prefix: Path) -> dict[str, dict[str, str]] | None:
    """Locust's summary by request name (``Aggregated``: all of them), or None if it wrote none."""
    stats = Path(f"{prefix}_stats.csv")
    if not stats.exists():
        return None
    with stats.open() as handle:
        return {line["Name"]: line for line in csv.DictReader(handle)}


def open_loop(
    url: str,
    *,
    rate: float,
    seconds: float,
    headers: dict[str, str],
    cafile: str | None,
    max_connections: int,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """One run of ``bench.openloop`` in a cgroup of its own (uncapped, accounted); its report,
    with ``generator_cpu_s``: the CPU its process used (None where no cgroup can be made)."""
    argv = [sys.executable, "-m", "bench.openloop", "--url", url, "--rate", f"{rate:g}",
            "--seconds", f"{seconds:g}", "--max-connections", str(max_connections),
            "--timeout", f"{timeout:g}", "--wait-for-go"]  # fmt: skip
    argv += [arg for name, value in headers.items() for arg in ("--header", f"{name}: {value}")]
    if cafile:
        argv += ["--cafile", cafile]
    process = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO
    )
    group = CappedGroup(f"bench-openloop-{os.getpid()}", None) if cgroup_problem() is None else None
    try:
        if group is not None:
            group.add_tree(process.pid)  # before its clock starts: every request's CPU is counted
        output, errors = process.communicate("go\n", timeout=seconds + timeout + 120)
        cpu = group.usage_seconds() if group is not None else None
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        if group is not None:
            group.remove()
    for line in output.splitlines():
        if line.startswith("OPENLOOP "):
            report: dict[str, Any] = json.loads(line.removeprefix("OPENLOOP "))
            report["generator_cpu_s"] = cpu
            return report
    raise RuntimeError(f"the open-loop generator gave no report: {(errors or output).strip()[-300:]}")
