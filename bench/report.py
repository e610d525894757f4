"""Turns a :class:`bench.run.Run` into ``report.md``, two PNG plots and the Phase 2 verification."""

from __future__ import annotations

import os
import platform
import runpy
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.run import Row, Run

THROUGHPUT_PNG = "throughput_vs_concurrency.png"
LATENCY_PNG = "latency_percentiles.png"
WRK_SCENARIOS = ("NGINX return 200", "bare WSGI", "/health", "message list")


def _gunicorn_shape() -> str:
    """The app servers' worker shape, read from the gunicorn config they run."""
    conf = runpy.run_path(
        str(Path(__file__).resolve().parent.parent / "deploy" / "gunicorn" / "gunicorn.conf.py")
    )
    shape = f"{conf['workers']} {conf['worker_class']} workers"
    return shape + (f" x {conf['threads']} threads" if conf["worker_class"] == "gthread" else "")


def _find(run: Run, scenario: str, concurrency: int) -> Row | None:
    return next((r for r in run.rows if r.scenario == scenario and r.concurrency == concurrency), None)


def _ratio(row: Row, base: Row | None) -> str:
    if base is None or not base.rps or not row.ok:
        return "-"
    if row.requests and row.errors > row.requests / 100:
        return "- (errors)"  # fast failures would count as throughput
    return f"{row.rps / base.rps:.2f}x"


def _num(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


def goals(run: Run) -> list[tuple[str, str, bool | None]]:
    """(goal, what was measured, met) for the issue's four goals."""
    low, high = run.plan.headline
    out: list[tuple[str, str, bool | None]] = []
    health, bare = _find(run, "/health", low), _find(run, "bare WSGI", low)
    if health and bare and bare.rps:
        ratio = health.rps / bare.rps
        out.append(
            (
                "`/health` ≥ 0.8x bare WSGI",
                f"{ratio:.2f}x ({_num(health.rps, 0)} vs {_num(bare.rps, 0)} req/s at {low})",
                ratio >= 0.8,
            )
        )
    messages = _find(run, "message list", low)
    if messages:
        met = messages.rps >= 1500 and messages.p99_ms < 100
        measured = f"{_num(messages.rps, 0)} req/s, p99 {_num(messages.p99_ms)} ms"
        out.append((f"message list ≥ 1,500 req/s, p99 < 100 ms at {low} connections", measured, met))
    at_high = [r for r in run.rows if r.concurrency == high and r.scenario in ("/health", "message list")]
    if at_high:
        errors = sum(r.errors for r in at_high)
        counts = ", ".join(f"{r.scenario}: {r.errors} errors of {r.requests:,}" for r in at_high)
        out.append((f"{high:,} concurrent connections with zero errors", counts, errors == 0))
    peak = int(run.facts.get("primary_connections_max", 0) or 0)
    out.append(
        ("primary server connections ≤ 30 throughout", f"max {peak} (sampled every 0.25 s)", peak <= 30)
    )
    return out


def _mark(met: bool | None) -> str:
    return {True: "met", False: "**not met**", None: "-"}[met]


def _plots(run: Run, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    throughput = out / THROUGHPUT_PNG
    figure, axis = plt.subplots(figsize=(8, 4.5))
    for scenario in WRK_SCENARIOS:
        rows = sorted((r for r in run.rows if r.scenario == scenario and r.ok), key=lambda r: r.concurrency)
        if rows:
            axis.plot([r.concurrency for r in rows], [r.rps for r in rows], marker="o", label=scenario)
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xticks(list(run.plan.levels))
    axis.xaxis.set_major_formatter(ScalarFormatter())
    axis.xaxis.set_minor_formatter(NullFormatter())
    axis.set_xlabel("concurrent connections (wrk)")
    axis.set_ylabel("requests per second")
    axis.set_title("Throughput vs concurrency" + (" (QUICK MODE)" if run.plan.quick else ""))
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(throughput, dpi=110)
    plt.close(figure)

    latency = out / LATENCY_PNG
    rows = [r for r in run.rows if r.ok and r.requests]
    figure, axis = plt.subplots(figsize=(10, 5))
    labels = [f"{r.scenario}\nc={r.concurrency}" for r in rows]
    positions = range(len(rows))
    width = 0.28
    for offset, (name, attribute) in enumerate((("p50", "p50_ms"), ("p90", "p90_ms"), ("p99", "p99_ms"))):
        axis.bar(
            [p + (offset - 1) * width for p in positions],
            [getattr(r, attribute) for r in rows],
            width,
            label=name,
        )
    axis.set_xticks(list(positions))
    axis.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
    axis.set_yscale("log")
    axis.set_ylabel("latency (ms)")
    axis.set_title("Latency percentiles" + (" (QUICK MODE)" if run.plan.quick else ""))
    axis.grid(True, axis="y", which="both", alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(latency, dpi=110)
    plt.close(figure)
    return [throughput, latency]


def _results_table(run: Run) -> list[str]:
    lines = [
        "| scenario | concurrency | tool | requests | req/s | p50 ms | p99 ms | errors | vs bare WSGI "
        "| vs NGINX 200 | primary conns (max) | note |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in run.rows:
        bare = _find(run, "bare WSGI", row.concurrency) or _find(run, "bare WSGI", run.plan.headline[0])
        nginx = _find(run, "NGINX return 200", row.concurrency) or _find(
            run, "NGINX return 200", run.plan.headline[0]
        )
        note = row.note if row.ok else f"FAILED: {row.note}"
        lines.append(
            f"| {row.scenario} | {row.concurrency:,} | {row.tool} | {row.requests:,} | {_num(row.rps, 0)} | "
            f"{_num(row.p50_ms)} | {_num(row.p99_ms)} | {row.errors:,} | {_ratio(row, bare)} | "
            f"{_ratio(row, nginx)} | {row.primary_connections_max} | {note} |"
        )
    return lines


def write(run: Run, *, out: Path, verification: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    plots = _plots(run, out)
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
        "| goal | measured | |",
        "|---|---|---|",
        *[f"| {goal} | {measured} | {_mark(met)} |" for goal, measured, met in goals(run)],
        "",
        "## Results",
        "",
        "Errors are connect/read/write failures, timeouts and non-2xx/3xx answers (wrk), or failed "
        "requests (Locust). Ratios compare with the baseline at the same concurrency. Primary conns: "
        "most server connections seen on the PostgreSQL primary while the row ran.",
        "",
        *_results_table(run),
        "",
        f"![Throughput vs concurrency]({THROUGHPUT_PNG})",
        "",
        f"![Latency percentiles]({LATENCY_PNG})",
        "",
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
    report.write_text("\n".join(lines).rstrip() + "\n")
    verification.parent.mkdir(parents=True, exist_ok=True)
    verification.write_text(_verification(run, report))
    return [report, *plots, verification]


def _verification(run: Run, report: Path) -> str:
    low = run.plan.headline[0]
    command = "make bench QUICK=1" if run.plan.quick else "make bench"
    messages, one = _find(run, "message list", low), _find(run, "message list, one server", low)
    restart = next((r for r in run.rows if "restarts" in r.scenario), None)
    # Availability under the load the servers are sized for: every cluster row below the top
    # concurrency (that one is an overload test, reported on its own).
    top = max(run.plan.levels)
    cluster_rows = [r for r in run.rows if r.scenario not in ("NGINX return 200", "bare WSGI")]
    served = [r for r in cluster_rows if r.concurrency < top]
    total = sum(r.requests for r in served)
    failed = sum(r.errors for r in served)
    availability = f"{100 * (1 - failed / total):.3f} %" if total else "-"
    overload = [r for r in cluster_rows if r.concurrency >= top]
    overload_text = ", ".join(f"{r.scenario} {r.errors:,} of {r.requests:,}" for r in overload)
    pgbouncer: dict[str, Any] = run.facts.get("pgbouncer") or {}
    jobs: dict[str, Any] = run.facts.get("jobs") or {}
    health: dict[str, Any] = run.facts.get("health") or {}
    servers: list[str] = run.facts.get("servers_behind_nginx") or []
    load_test = "-"
    if messages and one and one.rps:
        load_test = (
            f"message list through NGINX on {len(servers)} servers {_num(messages.rps, 0)} req/s vs one "
            f"server direct {_num(one.rps, 0)} req/s: {messages.rps / one.rps:.2f}x on this 2-core machine "
            f"(every server shares the same two cores); vs the seed's Phase 1 figure of 1,000 req/s: "
            f"{messages.rps / 1000:.2f}x"
        )
    during_restart = "-"
    if restart:
        during_restart = (
            f"{restart.errors} errors of {restart.requests:,} while {restart.note.split(' (')[0]}"
        )
    rows = [
        (
            "3-4 backend servers running behind NGINX",
            f"{len(servers)} servers answered through NGINX ({', '.join(servers)})",
            f"`{command}` (60 x `GET /health`, header `X-Served-By`)",
        ),
        (
            "PgBouncer handling 300+ concurrent connections",
            f"{pgbouncer.get('succeeded', '?')} of {pgbouncer.get('clients', '?')} clients connected at once "
            f"and queried; at most {pgbouncer.get('primary_connections_max', '?')} server connections on "
            f"the primary",
            f"`{command}`; `pytest tests/cluster/deploy` (1,000 clients on 30 server connections)",
        ),
        (
            "Distributed job locking prevents duplicates",
            f"jobs ledger `{jobs.get('table')}`: {jobs.get('successful_runs', '?')} successful runs, "
            f"{jobs.get('skipped_deliveries', '?')} deliveries skipped (lock held elsewhere or tick "
            f"already run), {jobs.get('duplicates', '?')} ticks that succeeded twice",
            f"`{command}` (ledger query); `pytest tests/cluster/jobs tests/cluster/locking`",
        ),
        (
            "Health checks working correctly",
            ", ".join(f"{path} -> {code}" for path, code in health.items() if path.startswith("/")),
            f"`{command}`; `pytest tests/cluster/health`",
        ),
        ("Load testing shows 2-3x improvement", load_test, f"`{command}`"),
        (
            "99.9% availability maintained",
            f"{availability} of {total:,} requests answered without error below {top:,} connections; "
            f"{during_restart}; at {top:,} connections (overload) errors were: {overload_text}",
            f"`{command}`; `pytest tests/cluster/health tests/cluster/edge`",
        ),
        (
            "Team trained on new infrastructure",
            "not measurable here: README, docs/ and the ADRs are the material",
            "-",
        ),
    ]
    docs = Path(__file__).resolve().parents[1] / "docs"
    link = os.path.relpath(report, start=report.parent if run.plan.quick else docs)
    lines = [
        "# Phase 2 verification" + (" - QUICK MODE (not the real figures)" if run.plan.quick else ""),
        "",
        f"Regenerated by `{command}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(run.started))}. "
        f"The seed's success criteria, each with the figure measured on the local cluster and the "
        f"command that measured it. Every number of the run is in [{report.name}]({link}).",
        "",
        "| # | criterion | measured | command |",
        "|---|---|---|---|",
        *[
            f"| {n} | {criterion} | {measured} | {cmd} |"
            for n, (criterion, measured, cmd) in enumerate(rows, 1)
        ],
        "",
        "## The load-test goals",
        "",
        "| goal | measured | |",
        "|---|---|---|",
        *[f"| {goal} | {measured} | {_mark(met)} |" for goal, measured, met in goals(run)],
        "",
    ]
    return "\n".join(lines)
