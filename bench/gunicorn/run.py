"""Which gunicorn workers serve this app best on this machine: sync vs gthread, measured.

    .venv/bin/python -m bench.gunicorn.run            # full run, a few seconds per cell
    .venv/bin/python -m bench.gunicorn.run --quick    # one short cell per worker class (the test)

Each worker setup is a real gunicorn started from ``deploy/gunicorn/gunicorn.conf.py`` (the same
file every server runs) with ``GUNICORN_WORKER_CLASS``, ``GUNICORN_WORKERS`` and
``GUNICORN_THREADS`` overridden, on a free port below 32768. ``wrk`` drives it from a second
process on loopback. Two requests: ``/health/live`` (Django with no I/O: CPU-bound) and
``/health/debug/slow?seconds=0.01`` (a view that waits 10 ms, the way a view waits on a few
database queries or an HTTP call: I/O-bound). ``/health/ready`` is not used for the second: its
checks run under a per-process lock, which would hide what threads can do.

Other work on the machine skews any single measurement, so every server runs for the whole
benchmark and the cells are measured in interleaved rounds; the report gives the median per cell
and the load average. Results go to ``bench/out/gunicorn.md`` with req/s, p99 and the ratio to
the first setup. Only ratios mean anything across machines.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.generators import WrkLatency, read_wrk_latency, wrk_latency
from bench.servers import GUNICORN, GUNICORN_CONF
from deploy.local.cluster import REPO
from deploy.local.host import free_port, stop_process

OUT = REPO / "bench" / "out"


@dataclass(frozen=True)
class Setup:
    worker_class: str
    workers: int
    threads: int = 1

    @property
    def label(self) -> str:
        if self.worker_class == "gthread":
            return f"gthread x{self.workers} x{self.threads} threads"
        return f"{self.worker_class} x{self.workers}"


@dataclass(frozen=True)
class Scenario:
    name: str
    path: str


@dataclass(frozen=True)
class Result:
    setup: Setup
    scenario: Scenario
    requests_per_second: float
    p99_ms: float
    requests: int
    errors: int  # non-2xx/3xx answers plus socket errors
    # CPU time the server spent per answered request: what contention on a shared machine skews least.
    cpu_ms_per_request: float


SCENARIOS = (
    Scenario("cpu: /health/live", "/health/live"),
    Scenario("io: 10 ms wait", "/health/debug/slow?seconds=0.01"),
)


def default_setups(cores: int) -> list[Setup]:
    # sync at 2 workers per core + 1 (gunicorn's rule of thumb) and at one per core, against
    # gthread with one process per core and 4 threads each.
    return [
        Setup("sync", cores),
        Setup("sync", 2 * cores + 1),
        Setup("gthread", cores, 4),
        Setup("gthread", 2 * cores, 4),
    ]


def _wait_serving(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode} at start (log: {log})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not listen on {port} within {timeout:.0f}s (log: {log})")


def start_gunicorn(setup: Setup, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DJANGO_DEBUG": "false",
        "APP_SERVER_NAME": "bench",
        "GUNICORN_WORKER_CLASS": setup.worker_class,
        "GUNICORN_WORKERS": str(setup.workers),
        "GUNICORN_THREADS": str(setup.threads),
        "GUNICORN_ACCESS_LOG": str(log.with_suffix(".access.log")),
        "HEALTH_DEBUG_SLOW_ENDPOINT": "true",
        # Nothing balances to this server: stop at once instead of draining.
        "HEALTH_DRAIN_SECONDS": "0",
        "PYTHONUNBUFFERED": "1",
    }
    argv = [GUNICORN, "-c", str(GUNICORN_CONF), "--bind", f"127.0.0.1:{port}", "config.wsgi"]
    with log.open("wb") as handle:
        process = subprocess.Popen(
            argv, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
    _wait_serving(port, process, log)
    return process


def parse_wrk(output: str) -> tuple[float, float, int, int]:
    """(req/s, p99 in ms, requests, errors) from ``wrk --latency`` output."""
    return _cell(read_wrk_latency(output))


def _cell(found: WrkLatency) -> tuple[float, float, int, int]:
    if found.rps is None or found.p99_ms is None or found.requests is None:
        raise RuntimeError(f"cannot read wrk's output:\n{found.output}")
    return found.rps, found.p99_ms, found.requests, found.non_2xx + found.socket_errors


def drive(
    port: int, scenario: Scenario, *, seconds: float, connections: int, timeout: float = 10.0
) -> tuple[float, float, int, int]:
    # wrk's default 2 s timeout would count a slow answer from a loaded machine as an error.
    url = f"http://127.0.0.1:{port}{scenario.path}"
    return _cell(wrk_latency(url, connections=connections, seconds=seconds, timeout=timeout))


def warm_up(port: int, scenarios: tuple[Scenario, ...], *, connections: int) -> None:
    """Until every worker has answered fast: a fresh worker's first request imports the URLconf
    and opens its connections, which takes seconds on a busy machine."""
    deadline = time.monotonic() + 60
    for scenario in scenarios:
        while time.monotonic() < deadline:
            _, p99, total, _ = drive(port, scenario, seconds=2.0, connections=connections, timeout=30.0)
            if total and p99 < 1000:
                break


_TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")


def server_cpu_ms(master: int) -> float:
    """CPU time of a gunicorn master and its workers so far, those that exited included."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        pid, parent = int(stat.parent.name), int(fields[1])
        if pid == master:  # utime, stime and the reaped children's cutime, cstime
            total += sum(int(value) for value in fields[11:15]) * _TICK_MS
        elif parent == master:
            total += sum(int(value) for value in fields[11:13]) * _TICK_MS
    return total


def measure(
    setups: list[Setup], scenarios: tuple[Scenario, ...], *, seconds: float, connections: int, rounds: int
) -> list[Result]:
    """Every setup's server runs throughout; each round drives every cell once; medians per cell."""
    OUT.mkdir(parents=True, exist_ok=True)
    servers: dict[Setup, tuple[int, subprocess.Popen[bytes]]] = {}
    samples: dict[tuple[Setup, Scenario], list[tuple[float, float, int, int, float]]] = {}
    try:
        for setup in setups:
            port = free_port()
            log = OUT / f"gunicorn-{setup.worker_class}-{setup.workers}x{setup.threads}.log"
            servers[setup] = (port, start_gunicorn(setup, port, log))
            warm_up(port, scenarios, connections=connections)
        for _ in range(rounds):
            for scenario in scenarios:
                for setup in setups:
                    port, process = servers[setup]
                    cpu_before = server_cpu_ms(process.pid)
                    rps, p99, total, errors = drive(port, scenario, seconds=seconds, connections=connections)
                    cpu_per_request = (server_cpu_ms(process.pid) - cpu_before) / max(total, 1)
                    samples.setdefault((setup, scenario), []).append(
                        (rps, p99, total, errors, cpu_per_request)
                    )
    finally:
        for _, process in servers.values():
            stop_process(process, session=True)
    results = []
    for setup in setups:
        for scenario in scenarios:
            cell = samples[(setup, scenario)]
            results.append(
                Result(
                    setup,
                    scenario,
                    statistics.median(sample[0] for sample in cell),
                    statistics.median(sample[1] for sample in cell),
                    sum(sample[2] for sample in cell),
                    sum(sample[3] for sample in cell),
                    statistics.median(sample[4] for sample in cell),
                )
            )
    return results


def best(results: list[Result]) -> Setup:
    """The setup with the highest geometric mean of req/s over the scenarios, errors disqualifying."""
    scores: dict[Setup, float] = {}
    for result in results:
        if result.errors:
            scores[result.setup] = 0.0
        elif scores.get(result.setup, 1.0) > 0:
            scores[result.setup] = scores.get(result.setup, 1.0) * result.requests_per_second
    return max(scores, key=lambda setup: scores[setup])


def report(results: list[Result], *, seconds: float, connections: int, cores: int, rounds: int) -> str:
    baseline = {result.scenario: result for result in results if result.setup == results[0].setup}
    lines = [
        "# gunicorn worker benchmark",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {cores} cores; load average "
        f"{os.getloadavg()[0]:.1f} at the end; wrk -t2 -c{connections}, {seconds:g}s per cell, "
        f"median of {rounds} interleaved rounds after a warm-up; config deploy/gunicorn/gunicorn.conf.py. "
        f"Ratios are to `{results[0].setup.label}`; errors are non-2xx answers and socket errors, "
        "summed over the rounds.",
        "",
        "| workers | request | req/s | ratio | p99 ms | p99 ratio | CPU ms/req | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        base = baseline[result.scenario]
        lines.append(
            f"| {result.setup.label} | {result.scenario.name} | {result.requests_per_second:,.0f} | "
            f"{result.requests_per_second / base.requests_per_second:.2f} | {result.p99_ms:.1f} | "
            f"{result.p99_ms / base.p99_ms:.2f} | {result.cpu_ms_per_request:.2f} | {result.errors} |"
        )
    lines += ["", f"Best (geometric mean of req/s, no errors): **{best(results).label}**", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="one short cell per worker class")
    parser.add_argument("--seconds", type=float, default=5.0, help="wrk duration per cell")
    parser.add_argument("--connections", type=int, default=32, help="wrk concurrent connections")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median per cell)")
    parser.add_argument("--out", type=Path, default=OUT / "gunicorn.md", help="report file")
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    scenarios: tuple[Scenario, ...]
    if args.quick:
        setups = [Setup("sync", 1), Setup("gthread", 1, 2)]
        scenarios, seconds, connections, rounds = SCENARIOS[:1], 1.0, 8, 1
    else:
        setups, scenarios = default_setups(cores), SCENARIOS
        seconds, connections, rounds = args.seconds, args.connections, args.rounds
    results = measure(setups, scenarios, seconds=seconds, connections=connections, rounds=rounds)
    text = report(results, seconds=seconds, connections=connections, cores=cores, rounds=rounds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
