"""Turns a :class:`bench.plan.Run` into ``report.md``, its plots (``bench.plots``) and the Phase 2
verification (``bench.verification``): the header, the goals (``bench.goals``), the table of
every row, the scale-out and profile sections, the cluster's facts and the micro-benchmarks."""

from __future__ import annotations

import os
import platform
import runpy
import time
from pathlib import Path
from typing import Any

from bench.availability import MARKERS as AVAILABILITY_MARKERS
from bench.goals import goal_lines, number
from bench.phase2 import section_carry_over
from bench.plan import Row, Run
from bench.plots import LATENCY_PNG, SCALEOUT_PNG, THROUGHPUT_PNG, load_plots, scaleout_plot
from bench.scaleout import markdown as scaleout_markdown
from bench.verification import verification_text
from deploy.local.cluster import REPO


def _gunicorn_shape() -> str:
    """The app servers' worker shape, read from the gunicorn config they run."""
    conf = runpy.run_path(str(REPO / "deploy" / "gunicorn" / "gunicorn.conf.py"))
    shape = f"{conf['workers']} {conf['worker_class']} workers"
    return shape + (f" x {conf['threads']} threads" if conf["worker_class"] == "gthread" else "")


def _ratio(row: Row, base: Row | None) -> str:
    if base is None or not base.rps or not row.ok:
        return "-"
    if row.requests and row.errors > row.requests / 100:
        return "- (errors)"  # fast failures would count as throughput
    return f"{row.rps / base.rps:.2f}x"


def results_table(run: Run) -> list[str]:
    """Every row of the run as one line of the results table."""
    lines = [
        "| scenario | concurrency | tool | requests | served 2xx/s | shed 503 | errors | p50 ms | p99 ms "
        "| CPU ms/req (machine) | CPU ms/req (cluster) | generator cores | vs bare WSGI | primary conns "
        "| note |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in run.rows:
        bare = run.row("bare WSGI", row.concurrency) or run.row("bare WSGI", run.plan.headline[0])
        note = row.note if row.ok else f"FAILED: {row.note}"
        lines.append(
            f"| {row.scenario} | {row.concurrency:,} | {row.tool} | {row.requests:,} | "
            f"{number(row.served_rps, 0)} | {row.shed:,} | {row.errors:,} | {number(row.p50_ms)} | "
            f"{number(row.p99_ms)} | {row.cpu_machine_ms:.2f} | "
            f"{row.cpu_cluster_ms:.2f} | {row.generator_cores:.2f} | {_ratio(row, bare)} | "
            f"{row.primary_connections_max} | {note} |"
        )
    return lines


def _scaleout_section(run: Run, out: Path) -> list[str]:
    scale: dict[str, Any] = run.facts.get("scaleout") or {}
    if not scale:
        return []
    if scale.get("skipped"):
        return ["## Scale-out with CPU-capped servers", "", f"Skipped: {scale['skipped']}", ""]
    # The table is scaleout.markdown's, the same one `python -m bench.scaleout --out` writes.
    lines = ["## Scale-out with CPU-capped servers", "", *scaleout_markdown(scale).splitlines()]
    lines += ["", f"![Scale-out]({SCALEOUT_PNG})", ""]
    scaleout_plot({int(n): rate for n, rate in scale["rps"].items()}, quick=run.plan.quick, out=out)
    return lines


def _profile_section(run: Run) -> list[str]:
    profiles: dict[str, str] = run.facts.get("profiles") or {}
    if not profiles:
        return []
    lines = ["## One message-list request, profiled (cProfile, DEBUG off, in the app process)", ""]
    for title, text in profiles.items():
        lines += [f"### {title}", "", text.strip(), ""]
    return lines


def write(run: Run, *, out: Path, verification: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    plots = load_plots(run, out)
    mode = "QUICK MODE (seconds, small data: the numbers mean nothing)" if run.plan.quick else "full run"
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(run.started))
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    load_at_start = ", ".join(f"{value:.2f}" for value in run.load_at_start)
    data = run.facts.get("data", {})
    servers = run.facts.get("servers_behind_nginx", [])
    command = "make bench QUICK=1" if run.plan.quick else "make bench"
    lines = [
        f"# Load test report — {mode}",
        "",
        f"Measured {when} by `{command}` (`bench/run.py`) on {os.cpu_count()} CPU cores "
        f"({platform.machine()}; load average {load_at_start} at the start, {load} at the end: other "
        f"processes of the machine count), against the local cluster: NGINX "
        f"(TLS) → 3 gunicorn app servers x {_gunicorn_shape()} → PgBouncer (transaction mode, pool 30) → "
        f"PostgreSQL primary, reads from the streaming replica. Load generators, NGINX, the app servers, "
        f"Celery and both databases share these cores, so only ratios carry over to other machines.",
        "",
        f"Data: {data.get('churches', '?')} churches, {data.get('messages', '?'):,} messages "
        f"({data.get('church_messages', '?')} in the church whose staff member the load generators "
        f"log in as). wrk runs {run.plan.seconds:g} s per row with `--timeout 10s`; "
        f"Locust {run.plan.locust_seconds:g} s.",
        "",
        "## Goals (reported, not asserted)",
        "",
        *goal_lines(run),
        "## Results",
        "",
        "Served: 2xx answers per second. Shed: the edge's quick JSON 503s (overload, ADR 0014), "
        "never counted as served. Errors: connect/read/write failures, timeouts and any other "
        "non-2xx answer (wrk), or failed requests (Locust). CPU per request: busy time over the "
        "row divided by the requests answered, for the whole machine (`/proc/stat`: neighbours' "
        "work included) and for the cluster's own processes alone; generator cores: the load "
        "generator's own CPU. Ratios compare with the baseline at the same concurrency. Primary "
        "conns: most server connections seen on the PostgreSQL primary while the row ran.",
        "",
        *results_table(run),
        "",
        f"![Throughput vs concurrency]({THROUGHPUT_PNG})",
        "",
        f"![Latency percentiles]({LATENCY_PNG})",
        "",
        *_scaleout_section(run, out),
        *_profile_section(run),
        "## Cluster facts measured in the same run",
        "",
        f"- App servers that answered 60 requests through NGINX: {', '.join(servers)}",
        f"- PgBouncer: {run.facts.get('pgbouncer')}",
        f"- Health endpoints: {run.facts.get('health')}",
        f"- Jobs ledger: {run.facts.get('jobs')}",
        f"- Most server connections on the primary during the whole run: "
        f"{run.facts.get('primary_connections_max')} ({run.facts.get('primary_connection_samples')} samples)",
        "",
        "## Micro-benchmarks",
        "",
    ]
    if not run.micro:
        lines.append(
            "None of the micro-benchmark scripts (bench/locks, bench/replicas, bench/gunicorn, "
            "bench/pgbouncer) was present."
        )
    for name, text in run.micro.items():
        lines += [f"### {name}", "", text, ""]
    report = out / "report.md"
    # The Phase 2 and availability sections come from their own, longer runs (``bench.phase2``,
    # ``bench.availability``): keep them.
    old = _text(report)
    text = section_carry_over(old, "\n".join(lines).rstrip() + "\n", AVAILABILITY_MARKERS)
    report.write_text(section_carry_over(old, text))
    verification.parent.mkdir(parents=True, exist_ok=True)
    verification.write_text(section_carry_over(_text(verification), verification_text(run, report)))
    return [report, *plots, verification]


def _text(path: Path) -> str:
    return path.read_text() if path.exists() else ""
