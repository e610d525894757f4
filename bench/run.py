"""The Phase 2 load test, in one run: baselines, the cluster's endpoints, the mixed scenario.

    make bench                 # .venv/bin/python -m bench.run   (minutes; rewrites bench/report.md)
    make bench QUICK=1         # .venv/bin/python -m bench.run --quick --out DIR   (seconds)

Against the running local cluster (``make up``), as root like the cluster itself:

1. baselines: NGINX ``return 200``, and a bare WSGI app (``bench/bare_wsgi.py``) under the same
   gunicorn config, three instances like the three app servers, through a tiny NGINX of its own
   (rendered in a temporary folder on a free port below 32768, started and stopped by PID, TLS
   with the cluster's certificate like the real edge);
2. ``/health`` through the cluster's NGINX;
3. the message-list API through NGINX (replica reads), the same on one server without NGINX,
   and the mixed Locust scenario (``bench/locustfile.py``: log in, list, send, inbound webhook);
4. each at 64 and at 5,000 concurrent connections (and two levels between, for the plots);
5. availability: the message list while an app server restarts, and PgBouncer with 300
   concurrent clients; then the micro-benchmarks other parts left in ``bench/`` (locks, router,
   gunicorn, PgBouncer), whose own reports are copied into this one.

While it runs, the number of server connections on the PostgreSQL primary is sampled every
quarter second. It writes ``report.md``, two PNG plots and ``phase2-verification.md``
(``bench/`` and ``docs/`` for a full run; ``--out`` for a quick one). Goals are reported, never
asserted: the numbers are what this machine did.

Every load generator sends NGINX's rate-limit bypass header (``X-RateLimit-Bypass``, the
cluster's token); without it the per-client limits would be what is measured.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import requests

from bench import nginx
from bench.cpu import CpuMeter
from deploy.local import cluster
from deploy.local.host import free_port, raise_file_limit, stop_process

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
WRK = "/usr/bin/wrk"
PY = str(REPO / ".venv" / "bin" / "python")
LOCUST = str(REPO / ".venv" / "bin" / "locust")
GUNICORN = str(REPO / ".venv" / "bin" / "gunicorn")
GUNICORN_CONF = REPO / "deploy" / "gunicorn" / "gunicorn.conf.py"


# Rows measured without the status split: the baselines answer 200 only, and the split's Lua
# callback would make wrk itself the bottleneck of NGINX's "return 200".
BASELINES = ("NGINX return 200", "bare WSGI")


@dataclass(frozen=True)
class Plan:
    """How big the run is: the full run, or the quick one the test suite runs."""

    quick: bool
    levels: tuple[int, ...]  # concurrent connections for the wrk scenarios
    headline: tuple[int, int]  # the two levels the goals talk about
    seconds: float  # per wrk measurement
    locust_users: tuple[int, int]
    locust_seconds: float
    churches: int
    contacts: int
    messages: int
    pgbouncer_clients: int
    restart_seconds: float

    @classmethod
    def full(cls) -> Plan:
        return cls(False, (64, 256, 1024, 5000), (64, 5000), 15.0, (64, 5000), 60.0, 100, 20_000,
                   100_000, 300, 20.0)  # fmt: skip

    @classmethod
    def fast(cls) -> Plan:
        return cls(True, (8, 32), (8, 32), 1.0, (8, 50), 6.0, 2, 20, 200, 20, 6.0)

    def wrk_seconds(self, concurrency: int) -> float:
        """How long a wrk row at ``concurrency`` lasts: thousands of TLS handshakes come first, so
        a big full run gets the time to reach a steady state."""
        return max(self.seconds, 0 if self.quick else concurrency / 200)


@dataclass
class Row:
    """One measurement: a scenario at one concurrency."""

    scenario: str
    concurrency: int
    tool: str
    requests: int = 0
    rps: float = 0.0
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    errors: int = 0
    primary_connections_max: int = 0
    note: str = ""
    ok: bool = True
    # Answers by status (cluster rows; wrk_status.lua): served 2xx, shed 503, anything else.
    served: int | None = None
    shed: int = 0
    cpu_machine_ms: float = 0.0  # whole-machine busy CPU per request (/proc/stat)
    cpu_cluster_ms: float = 0.0  # the cluster's own processes' CPU per request
    generator_cores: float = 0.0  # the load generator's CPU, in cores

    @property
    def served_rps(self) -> float:
        """2xx answers per second: what was served, never what was shed or failed."""
        if self.served is None or not self.requests:
            return self.rps
        return self.rps * self.served / self.requests


@dataclass
class Run:
    plan: Plan
    rows: list[Row] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    micro: dict[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    load_at_start: tuple[float, float, float] = field(default_factory=os.getloadavg)


def say(message: str) -> None:
    print(message, flush=True)


# --- helpers ---------------------------------------------------------------------------------


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cluster.port_open(port):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port} after {timeout:.0f}s")


class PrimaryConnections:
    """Samples the server connections on the PostgreSQL primary (what PgBouncer keeps open, plus
    anything connecting directly) every quarter second, in a background thread."""

    QUERY = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
        "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
    )

    def __init__(self, cfg: cluster.Settings) -> None:
        self.cfg = cfg
        self.peak = 0
        self.overall_peak = 0
        self.samples = 0
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        dsn = (
            f"host=127.0.0.1 port={self.cfg.pg_primary_port} dbname={self.cfg.db_name} "
            f"user={self.cfg.db_user} password={self.cfg.db_password} connect_timeout=3"
        )
        while not self._stop.is_set():
            try:
                with psycopg.connect(dsn, autocommit=True) as connection:
                    while not self._stop.is_set():
                        row = connection.execute(self.QUERY, [self.cfg.db_name]).fetchone()
                        count = int(row[0]) if row else 0
                        self.peak = max(self.peak, count)
                        self.overall_peak = max(self.overall_peak, count)
                        self.samples += 1
                        self._stop.wait(0.25)
            except psycopg.Error:
                self.failures += 1  # the primary restarted (another test's fault injection): reconnect
                self._stop.wait(0.5)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def take_peak(self) -> int:
        peak, self.peak = self.peak, 0
        return peak


# --- baselines: a tiny NGINX and the bare WSGI app ----------------------------------------------

BASELINE_HTTP = """
    access_log {folder}/access.log;
    upstream bare {{
        least_conn;
{upstreams}
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        location = /return200 {{ access_log off; return 200 "ok\\n"; }}
        location / {{
            proxy_pass http://bare;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Request-ID $request_id;
            proxy_next_upstream error timeout http_502 http_503;
        }}
    }}
"""


@contextlib.contextmanager
def baseline_servers(cfg: cluster.Settings) -> Iterator[int]:
    """Three bare-WSGI gunicorns and an NGINX in front of them; yields NGINX's port."""
    folder = nginx.make_folder("bench-baseline-")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        ports = []
        for index in range(len(cfg.app_ports)):
            port = free_port()
            env = {**os.environ, "APP_SERVER_NAME": f"bare{index + 1}", "HEALTH_DRAIN_SECONDS": "0"}
            env.pop("PROMETHEUS_MULTIPROC_DIR", None)
            argv = [GUNICORN, "-c", str(GUNICORN_CONF), "--bind", f"127.0.0.1:{port}",
                    "--name", f"bare{index + 1}", "bench.bare_wsgi:application"]  # fmt: skip
            log = (folder / f"bare{index + 1}.log").open("ab")
            processes.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env))
            wait_port(port)
            ports.append(port)
        nginx_port = free_port()
        tls = cfg.state_dir / "nginx"
        http = BASELINE_HTTP.format(
            folder=folder,
            port=nginx_port,
            cert=tls / "tls.crt",
            key=tls / "tls.key",
            upstreams="\n".join(f"        server 127.0.0.1:{port};" for port in ports),
        )
        processes.append(nginx.start(folder, http, workers="auto", connections=16384))
        wait_port(nginx_port)
        yield nginx_port
    finally:
        for process in reversed(processes):
            stop_process(process, signal.SIGQUIT if process is processes[-1] else signal.SIGTERM, timeout=15)


# --- load generators -----------------------------------------------------------------------------


def wrk(
    url: str,
    *,
    connections: int,
    seconds: float,
    headers: dict[str, str],
    by_status: bool = False,
    think_ms: float | None = None,
) -> dict[str, float]:
    """One wrk run; ``think_ms``: each connection waits a random think time of that mean before
    every request (``wrk_paced.lua``), an open loop of people instead of a flood."""
    threads = max(1, min(2, connections))
    script = "wrk_paced.lua" if think_ms else "wrk_status.lua" if by_status else "wrk_report.lua"
    argv = [WRK, f"-t{threads}", f"-c{connections}", f"-d{max(int(seconds), 1)}s", "--timeout", "10s",
            "-s", str(BENCH / script)]  # fmt: skip
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    argv.append(url)
    if think_ms:
        argv += ["--", str(int(think_ms))]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120, check=False)
    for line in result.stdout.splitlines():
        if line.startswith("WRKJSON "):
            return json.loads(line.removeprefix("WRKJSON "))
    raise RuntimeError(f"wrk gave no report: {(result.stderr or result.stdout).strip()[-300:]}")


def settle(cfg: cluster.Settings, timeout: float = 90.0) -> None:
    """After thousands of connections, wait until every app server answers promptly again: the
    connections NGINX queued in their listen backlogs are served after wrk stops, and would
    otherwise land in the next row."""
    deadline = time.monotonic() + timeout
    for port in cfg.app_ports:
        while time.monotonic() < deadline:
            try:
                started = time.monotonic()
                requests.get(f"http://127.0.0.1:{port}/health/live", timeout=2)
                if time.monotonic() - started < 0.2:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.5)


def measure_wrk(
    run: Run,
    sampler: PrimaryConnections,
    scenario: str,
    url: str,
    concurrency: int,
    headers: dict[str, str],
    *,
    seconds: float | None = None,
    think_ms: float | None = None,
) -> Row:
    say(f"  {scenario:<26} c={concurrency:<5} ...")
    sampler.take_peak()
    by_status = scenario not in BASELINES
    meter = CpuMeter(cluster_pids())
    try:
        length = seconds or run.plan.wrk_seconds(concurrency)
        with meter:
            report = wrk(
                url, connections=concurrency, seconds=length, headers=headers, by_status=by_status,
                think_ms=think_ms,
            )  # fmt: skip
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        row = Row(scenario, concurrency, "wrk", note=str(error), ok=False)
    else:
        # With the status split, a 503 the edge shed is counted apart, not as an error.
        answered = report["other"] if by_status else report["status"]
        errors = int(report["connect"] + report["read"] + report["write"] + answered + report["timeout"])
        row = Row(
            scenario,
            concurrency,
            "wrk",
            requests=int(report["requests"]),
            rps=report["requests"] / (report["duration_us"] / 1e6),
            p50_ms=report["p50_us"] / 1000,
            p90_ms=report["p90_us"] / 1000,
            p99_ms=report["p99_us"] / 1000,
            errors=errors,
            served=int(report["ok"]) if by_status else None,
            shed=int(report["shed"]) if by_status else 0,
        )
        row.cpu_machine_ms, row.cpu_cluster_ms = meter.use.per_request_ms(row.requests)
        row.generator_cores = meter.use.generator / max(meter.use.seconds, 1e-9)
    row.primary_connections_max = sampler.take_peak()
    run.rows.append(row)
    say(
        f"  {scenario:<26} c={concurrency:<5} {row.rps:9,.0f} req/s  p50 {row.p50_ms:7.1f} ms  "
        f"p99 {row.p99_ms:8.1f} ms  errors {row.errors}  shed {row.shed}  CPU/request "
        f"{row.cpu_machine_ms:.2f} ms (cluster {row.cpu_cluster_ms:.2f})  primary conns "
        f"{row.primary_connections_max}"
    )
    return row


def open_loop(
    run: Run, sampler: PrimaryConnections, url: str, headers: dict[str, str], capacity: float, *, users: int
) -> Row:
    offered = 0.7 * capacity
    think_ms = 1000 * users / offered
    run.facts["open_loop"] = {"capacity": capacity, "offered": offered, "users": users, "think_ms": think_ms}
    # Long enough for several think times, so every connection has been through a few requests.
    seconds = run.plan.seconds if run.plan.quick else max(60.0, 3 * think_ms / 1000)
    row = measure_wrk(
        run, sampler, "open loop, 70 % of capacity", url, users, headers, seconds=seconds, think_ms=think_ms
    )
    row.note = (
        f"{users:,} kept-alive connections, think time 0-{2 * think_ms / 1000:.0f} s (mean "
        f"{think_ms / 1000:.1f} s): {offered:,.0f} req/s offered, 70 % of {capacity:,.0f}; "
        f"wrk's own CPU {row.generator_cores:.2f} cores"
    )
    return row


def cluster_pids() -> list[int]:
    """The recorded PID of every running cluster process (their children are found from them)."""
    return [pid for _name, pid, _port, _var in cluster.status(cluster.Settings()) if pid]


def flood(
    run: Run,
    sampler: PrimaryConnections,
    scenario: str,
    url: str,
    concurrency: int,
    headers: dict[str, str],
    verify: str,
) -> Row:
    """``concurrency`` connections flat out, while a probe client measures how quickly the shed
    requests are answered and each app server's own /health/live answers; then the same
    endpoint at the headline concurrency for 10 s, to see throughput come back."""
    cfg = cluster.Settings()
    length = run.plan.wrk_seconds(concurrency)
    probe: dict[str, list[float] | list[int]] = {"shed_ms": [], "served_ms": [], "live": [], "other": []}
    stop = threading.Event()

    def probing() -> None:
        session = requests.Session()
        session.trust_env = False
        time.sleep(min(length / 3, 5))  # into the flood
        for port in cfg.app_ports:
            try:
                answer = session.get(f"http://127.0.0.1:{port}/health/live", timeout=5)
                probe["live"].append(answer.status_code)
            except requests.RequestException:
                probe["live"].append(0)
        while not stop.is_set():
            started = time.monotonic()
            try:
                # a new connection each time, like a new client arriving during the flood
                client = requests.Session()
                client.trust_env = False
                answer = client.get(
                    url, headers={**headers, "Connection": "close"}, verify=verify, timeout=15
                )
                key = {503: "shed_ms"}.get(answer.status_code, "served_ms" if answer.ok else "other")
            except requests.RequestException:
                key = "other"
            probe[key].append((time.monotonic() - started) * 1000)  # type: ignore[arg-type]
            stop.wait(0.1)

    thread = threading.Thread(target=probing, daemon=True)
    thread.start()
    row = measure_wrk(run, sampler, scenario, url, concurrency, headers, seconds=length)
    stop.set()
    thread.join(timeout=30)
    shed_ms = sorted(probe["shed_ms"])
    live = probe["live"]
    row.note = (
        f"probe during the flood: {len(shed_ms)} shed, median {_median(shed_ms):.0f} ms, max "
        f"{max(shed_ms, default=0):.0f} ms; {len(probe['served_ms'])} served; {len(probe['other'])} "
        f"other; each server's /health/live: {live}"
    )
    run.facts.setdefault("overload", {})[scenario] = {
        "shed_median_ms": _median(shed_ms),
        "shed_max_ms": max(shed_ms, default=0.0),
        "probe_other": len(probe["other"]),
        "live": list(live),
    }
    recovery = measure_wrk(
        run, sampler, f"{scenario}, right after {concurrency:,}", url, run.plan.headline[0], headers,
        seconds=max(run.plan.seconds, 1) if run.plan.quick else 10,
    )  # fmt: skip
    recovery.note = "the first 10 s after the flood stopped"
    return row


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else 0.0


def measure_locust(
    run: Run,
    sampler: PrimaryConnections,
    *,
    users: int,
    fixture: Path,
    out: Path,
    think: tuple[float, float],
    scenario: str = "mixed (Locust)",
    extra_env: dict[str, str] | None = None,
) -> Row:
    say(f"  {scenario:<26} users={users:<5} think {think[0]:g}-{think[1]:g} s ...")
    prefix = out / f"locust-{users}-{len(run.rows)}"
    cfg = cluster.Settings()
    env = {
        **os.environ,
        "BENCH_FIXTURE": str(fixture),
        "BENCH_WAIT_MIN": str(think[0]),
        "BENCH_WAIT_MAX": str(think[1]),
        **(extra_env or {}),
    }
    argv = [LOCUST, "-f", str(BENCH / "locustfile.py"), "--headless", "--only-summary",
            "-u", str(users), "-r", str(max(users // 10, 1)), "-t", f"{int(run.plan.locust_seconds)}s",
            "--host", f"https://127.0.0.1:{cfg.nginx_https_port}", "--csv", str(prefix),
            "--stop-timeout", "5", "--loglevel", "WARNING"]  # fmt: skip
    sampler.take_peak()
    meter = CpuMeter(cluster_pids())
    with meter:
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
            timeout=run.plan.locust_seconds + 180,
            check=False,
        )
    note = (extra_env or {}).get("BENCH_NOTE") or f"think time {think[0]:g}-{think[1]:g} s"
    row = Row(scenario, users, "locust", note=note)
    row.generator_cores = meter.use.generator / max(meter.use.seconds, 1e-9)
    stats = Path(f"{prefix}_stats.csv")
    if not stats.exists():
        row.ok = False
        row.note = f"locust wrote no stats: {(result.stderr or result.stdout).strip()[-300:]}"
    else:
        import csv

        with stats.open() as handle:
            table = {line["Name"]: line for line in csv.DictReader(handle)}
        total = table["Aggregated"]
        row.requests = int(total["Request Count"])
        row.errors = int(total["Failure Count"])
        row.rps = float(total["Requests/s"])
        row.served = row.requests - row.errors
        row.cpu_machine_ms, row.cpu_cluster_ms = meter.use.per_request_ms(row.requests)
        row.p50_ms = float(total["50%"])
        row.p90_ms = float(total["90%"])
        row.p99_ms = float(total["99%"])
        row.note += "; " + ", ".join(
            f"{name} {int(line['Request Count'])} ({int(line['Failure Count'])} failed)"
            for name, line in table.items()
            if name != "Aggregated"
        )
    row.primary_connections_max = sampler.take_peak()
    run.rows.append(row)
    if users >= 1000:
        settle(cfg)
    say(
        f"  {scenario:<26} users={users:<5} {row.rps:9,.0f} req/s  p50 {row.p50_ms:7.1f} ms  "
        f"p99 {row.p99_ms:8.1f} ms  errors {row.errors}  primary conns {row.primary_connections_max}"
    )
    return row


# --- facts for the verification ----------------------------------------------------------------


def servers_behind_nginx(nginx: str, headers: dict[str, str], verify: str) -> list[str]:
    session = requests.Session()
    session.trust_env = False
    seen = set()
    for _ in range(60):
        response = session.get(f"{nginx}/health", headers=headers, verify=verify, timeout=10)
        seen.add(response.headers.get("X-Served-By", "?"))
    return sorted(seen)


def health_answers(
    nginx: str, cfg: cluster.Settings, headers: dict[str, str], verify: str
) -> dict[str, object]:
    session = requests.Session()
    session.trust_env = False
    answers: dict[str, object] = {}
    for path in ("/health", "/health/live", "/health/ready"):
        answers[path] = session.get(f"{nginx}{path}", headers=headers, verify=verify, timeout=10).status_code
    detailed = session.get(f"http://127.0.0.1:{cfg.app_ports[0]}/health/detailed", timeout=10)
    answers["/health/detailed"] = detailed.status_code
    with contextlib.suppress(ValueError):
        checks = detailed.json().get("checks", {})
        answers["checks"] = {name: [item.get("status") for item in items] for name, items in checks.items()}
    return answers


def pgbouncer_clients(cfg: cluster.Settings, clients: int, sampler: PrimaryConnections) -> dict[str, object]:
    """``clients`` connections to PgBouncer at once, each holding its session while the others
    connect, then a query each; how many succeeded and how many primary connections it took."""
    dsn = (
        f"host=127.0.0.1 port={cfg.pgbouncer_port} dbname={cfg.db_name} user={cfg.db_user} "
        f"password={cfg.db_password} connect_timeout=10"
    )
    barrier = threading.Barrier(clients, timeout=60)

    def client(_index: int) -> bool:
        try:
            with psycopg.connect(dsn, autocommit=True, prepare_threshold=None) as connection:
                barrier.wait()  # every client connected at the same time
                connection.execute("SELECT pg_sleep(0.05)")
                return True
        except (psycopg.Error, threading.BrokenBarrierError):
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.abort()
            return False

    sampler.take_peak()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        results = list(pool.map(client, range(clients)))
    return {
        "clients": clients,
        "succeeded": sum(results),
        "seconds": round(time.monotonic() - started, 2),
        "primary_connections_max": sampler.take_peak(),
    }


def restart_during_load(
    run: Run, sampler: PrimaryConnections, url: str, headers: dict[str, str], server: str
) -> Row:
    """The message list at 64 connections while one app server restarts (drain, stop, start)."""
    seconds = run.plan.restart_seconds
    rows: list[Row] = []
    scenario = f"message list, {server} restarts"
    thread = threading.Thread(
        target=lambda: rows.append(
            measure_wrk(run, sampler, scenario, url, run.plan.headline[0], headers, seconds=seconds)
        )
    )
    thread.start()
    time.sleep(seconds / 4)
    say(f"  restarting {server} under load ...")
    cluster.restart(server)
    thread.join()
    if not rows:
        raise RuntimeError("the load during the restart gave no result")
    rows[0].note = f"{server} restarted (drain, stop, start) during the run"
    return rows[0]


def profiles(plan: Plan) -> dict[str, str]:
    before = BENCH / "profiles" / "message-list-before.md"
    after = Path(tempfile.mkdtemp(prefix="bench-profile-")) / "after.md"
    result = subprocess.run(
        [PY, "-m", "bench.profile_request", "--requests", "30" if plan.quick else "300", "--out", str(after)],
        capture_output=True, text=True, cwd=REPO, timeout=600, check=False,
    )  # fmt: skip
    found = {}
    if before.exists():
        found["Before the changes of issue 17"] = before.read_text()
    if result.returncode == 0 and after.exists():
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
        found["Now (this run)"] = f"Measured {when}, load average {load}.\n\n" + after.read_text()
    else:
        found["Now (this run)"] = "profiling failed: " + (result.stderr or result.stdout).strip()[-300:]
    return found


# --- micro-benchmarks from the other parts --------------------------------------------------------

MICRO = [
    # (name, command relative to the repository, extra options); each takes --out FILE.
    ("locks", ["bench/locks/bench_locks.py"], ["--iterations", "500"]),
    ("router", ["bench/replicas/bench_replicas.py"], []),
    ("gunicorn", ["-m", "bench.gunicorn.run"], ["--rounds", "1"]),  # its own report has three
    ("pgbouncer", ["bench/pgbouncer/bench_pgbouncer.py"], []),
    ("pgbouncer", ["-m", "bench.pgbouncer.run"], []),
    # 2,000 idle Socket.IO connections, memory per connection, webhook-to-client latency at 50/s
    ("live", ["-m", "bench.live.bench_live"], []),
]


def micro_benchmarks(run: Run, out: Path) -> None:
    for name, command, extra in MICRO:
        if name in run.micro:
            continue
        target = REPO / (command[1].replace(".", "/") + ".py" if command[0] == "-m" else command[0])
        if not target.exists():
            continue
        report = out / f"micro-{name}.md"
        argv = [PY, *command, *extra, "--out", str(report)]
        say(f"  micro-benchmark {name}: {' '.join(argv[1:])}")
        try:
            result = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=900, check=False)
        except subprocess.TimeoutExpired:
            run.micro[name] = f"`{' '.join(command)}` did not finish within 15 minutes."
            continue
        if result.returncode == 0 and report.exists():
            # Their headings sit under this report's "### name": push them two levels down.
            lines = report.read_text().strip().splitlines()
            text = "\n".join(f"##{line}" if line.startswith("#") else line for line in lines)
            run.micro[name] = f"`.venv/bin/python {' '.join(command + extra)}`\n\n{text}"
        else:
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            run.micro[name] = f"`{' '.join(command)}` failed (exit {result.returncode}): " + " / ".join(tail)


# --- the run --------------------------------------------------------------------------------------


def prepare_data(plan: Plan, fixture: Path) -> dict[str, object]:
    say(f"data: at least {plan.churches} churches and {plan.messages:,} messages (seeding what is missing)")
    subprocess.run(
        [PY, "-m", "bench.prepare", "--churches", str(plan.churches), "--contacts", str(plan.contacts),
         "--messages", str(plan.messages), "--out", str(fixture)],
        cwd=REPO, check=True, timeout=1800,
    )  # fmt: skip
    data: dict[str, object] = json.loads(fixture.read_text())
    return data


def login_token(nginx: str, data: dict[str, object], headers: dict[str, str], verify: str) -> str:
    session = requests.Session()
    session.trust_env = False
    response = session.post(
        f"{nginx}/auth/login",
        json={"username": data["username"], "password": data["password"]},
        headers=headers,
        verify=verify,
        timeout=10,
    )
    response.raise_for_status()
    return str(response.json()["token"])


def execute(plan: Plan, out: Path) -> Run:
    raise_file_limit()
    cfg = cluster.Settings()
    run = Run(plan)
    out.mkdir(parents=True, exist_ok=True)
    bypass = {"X-RateLimit-Bypass": cfg.ratelimit_bypass_token()}
    nginx = f"https://127.0.0.1:{cfg.nginx_https_port}"
    verify = str(cfg.state_dir / "nginx" / "tls.crt")
    fixture = out / "fixture.json"
    data = prepare_data(plan, fixture)
    fixture_with_token = {**data, "bypass_token": bypass["X-RateLimit-Bypass"]}
    fixture.write_text(json.dumps(fixture_with_token))
    fixture.chmod(0o600)
    run.facts["data"] = {key: data[key] for key in ("churches", "messages", "church_messages")}
    token = login_token(nginx, data, bypass, verify)
    api = {**bypass, "Authorization": f"Bearer {token}"}
    messages_path = "/api/messages?limit=50"

    sampler = PrimaryConnections(cfg)
    sampler.start()
    try:
        say("1. baselines: NGINX return 200, bare WSGI (3 gunicorns, same config) through NGINX")
        with baseline_servers(cfg) as port:
            for level in plan.levels:
                measure_wrk(
                    run, sampler, "NGINX return 200", f"https://127.0.0.1:{port}/return200", level, {}
                )
            for level in plan.levels:
                measure_wrk(run, sampler, "bare WSGI", f"https://127.0.0.1:{port}/bare", level, {})
        say("2. /health/live and /health through NGINX (the top level is a flood: served and shed apart)")
        top = max(plan.levels)
        measure_wrk(run, sampler, "/health/live", f"{nginx}/health/live", plan.headline[0], bypass)
        for level in plan.levels:
            if level == top:
                flood(run, sampler, "/health", f"{nginx}/health", level, bypass, verify)
            else:
                measure_wrk(run, sampler, "/health", f"{nginx}/health", level, bypass)
        say("3. the message-list API through NGINX (replica reads), one server direct, the mixed scenario")
        direct = f"http://127.0.0.1:{cfg.app_ports[0]}{messages_path}"
        for level in plan.levels:
            if level == top:
                flood(run, sampler, "message list", f"{nginx}{messages_path}", level, api, verify)
            else:
                measure_wrk(run, sampler, "message list", f"{nginx}{messages_path}", level, api)
            if level == plan.headline[0]:
                measure_wrk(run, sampler, "message list, one server", direct, level, api)
        # As fast as they can at the low count (throughput); at the high count, people: a
        # request every 5-15 s each, so 5,000 of them offer ~500 req/s.
        for users, think in zip(plan.locust_users, ((0.0, 0.0), (5.0, 15.0)), strict=True):
            measure_locust(run, sampler, users=users, fixture=fixture, out=out, think=think)
        # Real users, not a flood: 5,000 kept-alive connections, each waiting a random think
        # time before every request, offering 70 % of the capacity the message list just showed
        # at the headline concurrency. wrk (C, epoll) drives them: one Locust process could not
        # hold 5,000 TLS users on this machine (the generator, not the cluster, was the limit).
        capacity = next(
            (
                r.served_rps
                for r in run.rows
                if r.scenario == "message list" and r.concurrency == plan.headline[0]
            ),
            0.0,
        )
        if capacity:
            open_loop(run, sampler, f"{nginx}{messages_path}", api, capacity, users=plan.locust_users[1])
        run.facts["servers_behind_nginx"] = servers_behind_nginx(nginx, bypass, verify)
        say("4. availability: the message list while an app server restarts; PgBouncer with many clients")
        restart_during_load(run, sampler, f"{nginx}{messages_path}", api, cfg.server_names[-1])
        run.facts["pgbouncer"] = pgbouncer_clients(cfg, plan.pgbouncer_clients, sampler)
        say(f"  PgBouncer: {run.facts['pgbouncer']}")
        run.facts["health"] = health_answers(nginx, cfg, bypass, verify)
        run.facts["jobs"] = job_duplicates(cfg)
        say("5. one message-list request profiled in the app process (before: committed; after: now)")
        run.facts["profiles"] = profiles(plan)
        if not plan.quick:
            say("6. scale-out: the message list on 1..4 app servers, each capped at the same CPU share")
            from bench import scaleout

            run.facts["scaleout"] = scaleout.measure(api_headers=api, messages_path=messages_path)
        say("7. micro-benchmarks from bench/ (locks, router, gunicorn, PgBouncer)")
        if plan.quick:
            run.micro["(all)"] = "not run in quick mode"
        else:
            micro_benchmarks(run, out)
    finally:
        sampler.stop()
        fixture.unlink(missing_ok=True)  # it holds the bypass token and the demo password
    run.facts["primary_connections_max"] = sampler.overall_peak
    run.facts["primary_connection_samples"] = sampler.samples
    return run


JOB_LEDGER_QUERY = """
SELECT count(*) FILTER (WHERE outcome = 'success'),
       count(*) FILTER (WHERE outcome LIKE 'skipped-%%'),
       (SELECT count(*) FROM (SELECT 1 FROM jobs_jobrun WHERE outcome = 'success'
                              GROUP BY job, tick HAVING count(*) > 1) AS twice)
FROM jobs_jobrun
"""


def job_duplicates(cfg: cluster.Settings) -> dict[str, object]:
    """From the jobs ledger (one row per delivery): successful runs, skipped deliveries (another
    server held the lock, or the tick had run), and ticks that succeeded more than once."""
    dsn = (
        f"host=127.0.0.1 port={cfg.pg_primary_port} dbname={cfg.db_name} user={cfg.db_user} "
        f"password={cfg.db_password} connect_timeout=3"
    )
    try:
        with psycopg.connect(dsn, autocommit=True) as connection:
            row = connection.execute(JOB_LEDGER_QUERY).fetchone()
    except psycopg.Error as error:
        return {"table": "jobs_jobrun", "error": str(error).strip()[:200]}
    assert row is not None
    return {
        "table": "jobs_jobrun",
        "successful_runs": row[0],
        "skipped_deliveries": row[1],
        "duplicates": row[2],
    }


def open_loop_only(plan: Plan, capacity: float) -> int:
    """The open-loop row alone, against a capacity measured before (for re-measuring it)."""
    raise_file_limit()
    cfg = cluster.Settings()
    bypass = {"X-RateLimit-Bypass": cfg.ratelimit_bypass_token()}
    nginx = f"https://127.0.0.1:{cfg.nginx_https_port}"
    fixture = Path(tempfile.mkdtemp(prefix="bench-raw-")) / "fixture.json"
    data = prepare_data(plan, fixture)
    fixture.unlink(missing_ok=True)
    token = login_token(nginx, data, bypass, str(cfg.state_dir / "nginx" / "tls.crt"))
    run = Run(plan)
    sampler = PrimaryConnections(cfg)
    sampler.start()
    try:
        api = {**bypass, "Authorization": f"Bearer {token}"}
        row = open_loop(
            run, sampler, f"{nginx}/api/messages?limit=50", api, capacity, users=plan.locust_users[1]
        )
    finally:
        sampler.stop()
    from bench import report

    say("\n".join(report._results_table(run)))
    return 0 if row.ok else 1


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="The Phase 2 load test (see bench/run.py).")
    parser.add_argument("--quick", action="store_true", help="seconds, small data (the test suite's mode)")
    parser.add_argument("--out", type=Path, help="where to write the report (default: bench/, or a temp dir)")
    parser.add_argument(
        "--open-loop-only",
        type=float,
        metavar="CAPACITY",
        help="only the open-loop row, at 70 %% of CAPACITY req/s (printed; no report is written)",
    )
    args = parser.parse_args(argv)
    plan = Plan.fast() if args.quick else Plan.full()
    if args.open_loop_only:
        return open_loop_only(plan, args.open_loop_only)
    out = args.out or (Path(tempfile.mkdtemp(prefix="bench-quick-")) if args.quick else BENCH)
    say(f"bench: {'quick' if plan.quick else 'full'} run, report in {out}")
    run = execute(plan, Path(tempfile.mkdtemp(prefix="bench-raw-")))
    from bench import report

    verification = (
        out / "phase2-verification.md" if plan.quick or args.out else REPO / "docs" / "phase2-verification.md"
    )
    written = report.write(run, out=out, verification=verification)
    for path in written:
        say(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
