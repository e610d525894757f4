"""The load test's measurements, each one row of the run: a generator's run (``bench.generators``)
with the CPU it cost and the primary's connections while it ran (``bench.samplers``); a flood
at the top concurrency with a probe beside it; the open loop (``bench.openloop``: arrivals on a
schedule, latency from each request's scheduled time); the mixed Locust scenario."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import requests

from bench import generators
from bench.generators import locust, locust_stats, wrk
from bench.plan import BASELINES, Row, Run, say
from bench.samplers import CpuMeter, PrimaryConnections
from bench.servers import cluster_pids
from deploy.local import cluster


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
) -> Row:
    say(f"  {scenario:<26} c={concurrency:<5} ...")
    sampler.take_peak()
    by_status = scenario not in BASELINES
    meter = CpuMeter(cluster_pids())
    try:
        length = seconds or run.plan.wrk_seconds(concurrency)
        with meter:
            report = wrk(url, connections=concurrency, seconds=length, headers=headers, by_status=by_status)
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


MIX_SCENARIO = "realistic mix (Locust)"
OPEN_LOOP_SHARE = 0.7  # of the capacity the message list showed at the headline concurrency


def open_loop(
    run: Run,
    sampler: PrimaryConnections,
    url: str,
    headers: dict[str, str],
    capacity: float,
    *,
    cafile: str,
    max_connections: int,
) -> Row:
    """Requests arriving at 70 % of ``capacity`` on a precomputed schedule (``bench.openloop``):
    none waits for another's answer, and latency runs from each one's scheduled time."""
    offered = OPEN_LOOP_SHARE * capacity
    seconds = run.plan.seconds if run.plan.quick else 60.0
    scenario = f"open loop, {OPEN_LOOP_SHARE * 100:.0f} % of capacity"
    run.facts["open_loop"] = {"capacity": capacity, "offered": offered, "seconds": seconds}
    say(f"  {scenario:<26} {offered:,.0f} req/s for {seconds:g} s ...")
    sampler.take_peak()
    meter = CpuMeter(cluster_pids())
    try:
        with meter:
            report = generators.open_loop(
                url, rate=offered, seconds=seconds, headers=headers, cafile=cafile,
                max_connections=max_connections,
            )  # fmt: skip
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        row = Row(scenario, 0, "open loop", note=str(error), ok=False)
    else:
        row = open_loop_row(scenario, report, capacity=capacity)
        row.cpu_machine_ms, row.cpu_cluster_ms = meter.use.per_request_ms(row.requests)
    row.primary_connections_max = sampler.take_peak()
    run.rows.append(row)
    say(
        f"  {scenario:<26} {row.served_rps:9,.0f} served/s  p50 {row.p50_ms:7.1f} ms  "
        f"p99 {row.p99_ms:8.1f} ms (from the scheduled time)  errors {row.errors}  shed {row.shed}  "
        f"generator {row.generator_cores:.2f} cores"
    )
    return row


def open_loop_row(scenario: str, report: dict[str, Any], *, capacity: float) -> Row:
    """The open-loop generator's report as a row: latencies from the scheduled time, every
    request that got no 2xx or shed 503 (other status, socket error, timeout) an error."""
    duration = max(float(report["duration_s"]), 1e-9)
    cpu = report.get("generator_cpu_s")
    errors = sum(int(report[key]) for key in ("other", "connect", "read", "timeout"))
    row = Row(
        scenario,
        int(report["connections"]),
        "open loop",
        requests=int(report["requests"]),
        rps=int(report["requests"]) / duration,
        p50_ms=float(report["p50_ms"]),
        p90_ms=float(report["p90_ms"]),
        p99_ms=float(report["p99_ms"]),
        errors=errors,
        served=int(report["ok"]),
        shed=int(report["shed"]),
        generator_cores=cpu / duration if cpu is not None else 0.0,
    )
    row.note = (
        f"Poisson arrivals at {float(report['rate']):,.0f} req/s ({OPEN_LOOP_SHARE * 100:.0f} % of "
        f"{capacity:,.0f}) for {float(report['seconds']):g} s, {int(report['scheduled']):,} scheduled; "
        f"p99 from the send {float(report['p99_sent_ms']):,.1f} ms; the generator started requests at "
        f"most {float(report['schedule_lag_p99_ms']):,.1f} ms late (p99); {row.concurrency:,} connections; "
        + (
            f"its own cgroup used {cpu:.2f} CPU-s ({row.generator_cores:.2f} cores)"
            if cpu is not None
            else "its CPU unknown (no cgroup here)"
        )
    )
    return row


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
    sampler.take_peak()
    meter = CpuMeter(cluster_pids())
    with meter:
        result = locust(
            users=users,
            seconds=run.plan.locust_seconds,
            host=cfg.edge_url(),
            prefix=prefix,
            env=env,
        )
    note = (extra_env or {}).get("BENCH_NOTE") or f"think time {think[0]:g}-{think[1]:g} s"
    row = Row(scenario, users, "locust", note=note)
    row.generator_cores = meter.use.generator / max(meter.use.seconds, 1e-9)
    table = locust_stats(prefix)
    if table is None:
        row.ok = False
        row.note = f"locust wrote no stats: {(result.stderr or result.stdout).strip()[-300:]}"
    else:
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
