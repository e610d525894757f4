"""Turns a :class:`bench.run.Run` into ``report.md``, two PNG plots and the Phase 2 verification."""

from __future__ import annotations

import os
import platform
import runpy
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.phase2 import section_carry_over
from bench.scaleout import markdown as scaleout_markdown

if TYPE_CHECKING:
    from bench.run import Row, Run

THROUGHPUT_PNG = "throughput_vs_concurrency.png"
LATENCY_PNG = "latency_percentiles.png"
WRK_SCENARIOS = ("NGINX return 200", "bare WSGI", "/health", "message list")
SCALEOUT_PNG = "scaleout.png"


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
    """(goal, what was measured, met) for the load test's goals (issue 17's, at the headline level)."""
    low, high = run.plan.headline
    out: list[tuple[str, str, bool | None]] = []
    health, bare = _find(run, "/health", low), _find(run, "bare WSGI", low)
    live, messages = _find(run, "/health/live", low), _find(run, "message list", low)
    if messages:
        out.append(
            (
                f"whole-machine CPU per message-list request ≤ 5 ms at {low} connections",
                f"{messages.cpu_machine_ms:.2f} ms (the cluster's own processes: "
                f"{messages.cpu_cluster_ms:.2f} ms)",
                messages.cpu_machine_ms <= 5,
            )
        )
    # Served-rate ratios at the low headline level: (goal, row, row it is set against, lowest
    # passing ratio, unit, suffix). A baseline (bare WSGI) splits no statuses: its served rate is its rate.
    for title, top, bottom, floor, unit, suffix in (
        ("message list ÷ `/health/live` ≥ 0.35 (req/s)", messages, live, 0.35, "", ""),
        ("`/health` ÷ `/health/live` ≥ 0.90", health, live, 0.90, "", ""),
        ("`/health` ≥ 0.8x bare WSGI", health, bare, 0.8, "x", f" at {low}"),
    ):
        if top and bottom and bottom.served_rps:
            ratio = top.served_rps / bottom.served_rps
            rates = f"{_num(top.served_rps, 0)} vs {_num(bottom.served_rps, 0)} req/s{suffix}"
            out.append((title, f"{ratio:.2f}{unit} ({rates})", ratio >= floor))
    if messages:
        out.append(
            (
                f"message list p99 < 250 ms at {low} connections",
                f"{_num(messages.p99_ms)} ms ({_num(messages.served_rps, 0)} req/s, "
                f"{messages.errors} errors)",
                messages.p99_ms < 250 and messages.errors == 0,
            )
        )
    overload: dict[str, Any] = run.facts.get("overload") or {}
    for scenario in ("/health", "message list"):
        flood = _find(run, scenario, high)
        if flood is None:
            continue
        facts = overload.get(scenario, {})
        # nothing shed (the servers kept up) is as good as shed quickly
        quick = facts.get("shed_median_ms", 0) < 100
        live_ok = bool(facts.get("live")) and all(code == 200 for code in facts.get("live", []))
        out.append(
            (
                f"{scenario} at {high:,} connections: only 2xx and quick JSON 503s, no 502/504/socket errors",
                f"{flood.served or 0:,} served, {flood.shed:,} shed, {flood.errors:,} errors of "
                f"{flood.requests:,}; shed answers to a probe: "
                + (
                    f"median {facts.get('shed_median_ms', 0):.0f} ms, "
                    f"max {facts.get('shed_max_ms', 0):.0f} ms; "
                    if facts.get("shed_max_ms")
                    else "none (the probe was never shed); "
                )
                + f"every server's /health/live during it: {facts.get('live')}",
                flood.errors == 0 and quick and live_ok,
            )
        )
        after = _find(run, f"{scenario}, right after {high:,}", low)
        before = _find(run, scenario, low)
        if after and before and before.served_rps:
            ratio = after.served_rps / before.served_rps
            out.append(
                (
                    f"{scenario}: throughput back within 10 s after the flood",
                    f"{ratio:.2f}x of the rate before it ({_num(after.served_rps, 0)} vs "
                    f"{_num(before.served_rps, 0)} req/s)",
                    ratio >= 0.8,
                )
            )
    open_loop = next((r for r in run.rows if r.scenario.startswith("open loop")), None)
    if open_loop:
        out.append(
            (
                f"open loop: {open_loop.concurrency:,} users at 70 % of capacity, 0 errors, p99 < 500 ms",
                f"{_num(open_loop.served_rps, 0)} served/s, {open_loop.shed} shed, "
                f"{open_loop.errors} errors, "
                f"p99 {_num(open_loop.p99_ms)} ms; "
                f"load generator {open_loop.generator_cores:.2f} cores",
                open_loop.errors == 0 and open_loop.shed == 0 and open_loop.p99_ms < 500,
            )
        )
    for goal in _scaleout_goals(run):
        out.append(goal)
    peak = int(run.facts.get("primary_connections_max", 0) or 0)
    out.append(
        ("primary server connections ≤ 30 throughout", f"max {peak} (sampled every 0.25 s)", peak <= 30)
    )
    return out


def shortfalls(run: Run) -> list[str]:
    """For each goal this run did not meet: why, from the run's own figures, and the next step."""
    low, high = run.plan.headline
    missed = [goal for goal, _, met in goals(run) if met is False]

    def missed_goal(prefix: str) -> bool:
        return any(goal.startswith(prefix) for goal in missed)

    live, messages = _find(run, "/health/live", low), _find(run, "message list", low)
    out: list[str] = []
    if messages and live and missed_goal("message list ÷"):
        out.append(
            f"- **Message list ÷ `/health/live`.** Both rows are CPU-bound: the list costs "
            f"{messages.cpu_machine_ms:.2f} ms of whole-machine CPU per request, `/health/live` "
            f"{live.cpu_machine_ms:.2f} ms, so on a saturated machine their rates cannot differ by less "
            f"than {live.cpu_machine_ms / messages.cpu_machine_ms:.2f}. Above the framework, the list pays "
            "the token check, two queries on the replica (through its driver) and 20 rows of JSON; "
            "NGINX's TLS and the database servers run on the same cores. Next step: the first page of "
            "a church is read far more often than it changes; a per-church page cache keyed by the "
            "church's last message id would take the queries out of most requests."
        )
    health, bare = _find(run, "/health", low), _find(run, "bare WSGI", low)
    if health and bare and missed_goal("`/health` ≥"):
        out.append(
            f"- **`/health` against bare WSGI.** The two rows take different edges: the bare app "
            f"sits behind the benchmark's minimal NGINX (TLS and a plain access log), `/health` "
            f"behind the cluster's own (TLS, the JSON access log, request ids, rate-limit keys, "
            f"security headers); on the app servers `/health` is answered before Django "
            f"(`health/wsgi.py`). Whole-machine CPU per request: {health.cpu_machine_ms:.2f} ms "
            f"against {bare.cpu_machine_ms:.2f} ms. Next step: put the bare app behind the "
            "cluster's edge configuration too, so that the ratio measures the app alone."
        )
    if messages and messages.served_rps and missed_goal("message list p99"):
        mean = low / messages.served_rps * 1000
        out.append(
            f"- **Message list p99 at {low} connections.** The machine is saturated at "
            f"{_num(messages.served_rps, 0)} req/s: by Little's law a request spends {mean:.0f} ms in "
            f"the system on average (p50 {_num(messages.p50_ms)} ms), and with wrk, NGINX, the app "
            f"servers' processes, PgBouncer and both PostgreSQL servers scheduled on two cores the "
            f"slowest 1 % wait {messages.p99_ms / mean:.0f}x that. Next step: measure with the load "
            "generator and the databases on machines of their own; at the edge, admit per server no "
            "more than it serves at once (`max_conns` near workers x threads) so that waiting "
            "happens in NGINX's queue rather than behind a busy worker's threads."
        )
    overload: dict[str, Any] = run.facts.get("overload") or {}
    for scenario in ("/health", "message list"):
        facts = overload.get(scenario, {})
        flood = _find(run, scenario, high)
        title = f"{scenario} at {high:,} connections"
        if flood and flood.errors == 0 and missed_goal(title):
            out.append(
                f"- **{title}.** Nothing failed: {flood.errors} errors; every answer was a 2xx or "
                f"the edge's JSON 503. The shed answers reached a probe in "
                f"{facts.get('shed_median_ms', 0):.0f} ms (median) rather than under 100 ms: NGINX "
                f"decides a shed in microseconds of its own time, but the probe's request waits "
                f"behind {high:,} flood connections for NGINX's event loops on the same two cores as "
                "the flood's generator and the app servers. Next step: measure with the generator on "
                "another machine."
            )
    return out


def _scaleout_goals(run: Run) -> list[tuple[str, str, bool | None]]:
    scale: dict[str, Any] = run.facts.get("scaleout") or {}
    rates: dict[int, float] = {int(n): rate for n, rate in (scale.get("rps") or {}).items()}
    if not rates or 1 not in rates or not rates[1]:
        return []
    out: list[tuple[str, str, bool | None]] = []
    for servers, goal in ((3, 2.6), (4, 3.4)):
        if servers in rates:
            speedup = rates[servers] / rates[1]
            out.append(
                (
                    f"scale-out: {servers} CPU-capped servers ≥ {goal}x one",
                    f"{speedup:.2f}x ({_num(rates[servers], 0)} vs {_num(rates[1], 0)} req/s)",
                    speedup >= goal,
                )
            )
    return out


def _shortfall_lines(run: Run) -> list[str]:
    reasons = shortfalls(run)
    return ["Goals not met in this run: why, and the next step.", "", *reasons, ""] if reasons else []


def _mark(met: bool | None) -> str:
    return {True: "met", False: "**not met**", None: "-"}[met]


def _plots(run: Run, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    # Honest throughput: served 2xx per second on top, errors and shed requests (as a share of
    # all answers) below; a fast failure or a shed request never counts as throughput.
    throughput = out / THROUGHPUT_PNG
    figure, (axis, errors_axis) = plt.subplots(2, 1, figsize=(8, 7), sharex=True, height_ratios=(2, 1))
    for scenario in WRK_SCENARIOS:
        rows = sorted((r for r in run.rows if r.scenario == scenario and r.ok), key=lambda r: r.concurrency)
        if not rows:
            continue
        line = axis.plot([r.concurrency for r in rows], [max(r.served_rps, 0.1) for r in rows], marker="o",
                         label=scenario)[0]  # fmt: skip
        total = [max(r.requests, 1) for r in rows]
        levels = [r.concurrency for r in rows]
        error_share = [100 * r.errors / t for r, t in zip(rows, total, strict=True)]
        errors_axis.plot(levels, error_share, marker="x", color=line.get_color(), label=f"{scenario}: errors")
        if any(r.shed for r in rows):
            shed_share = [100 * r.shed / t for r, t in zip(rows, total, strict=True)]
            errors_axis.plot(
                levels,
                shed_share,
                marker="s",
                linestyle="--",
                color=line.get_color(),
                label=f"{scenario}: shed",
            )
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xticks(list(run.plan.levels))
    axis.xaxis.set_major_formatter(ScalarFormatter())
    axis.xaxis.set_minor_formatter(NullFormatter())
    axis.set_ylabel("served (2xx) per second")
    axis.set_title("Served throughput vs concurrency" + (" (QUICK MODE)" if run.plan.quick else ""))
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    errors_axis.set_xlabel("concurrent connections (wrk)")
    errors_axis.set_ylabel("% of answers")
    errors_axis.set_ylim(-2, 102)
    errors_axis.grid(True, alpha=0.3)
    errors_axis.legend(fontsize=7)
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
        "| scenario | concurrency | tool | requests | served 2xx/s | shed 503 | errors | p50 ms | p99 ms "
        "| CPU ms/req (machine) | CPU ms/req (cluster) | generator cores | vs bare WSGI | primary conns "
        "| note |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in run.rows:
        bare = _find(run, "bare WSGI", row.concurrency) or _find(run, "bare WSGI", run.plan.headline[0])
        note = row.note if row.ok else f"FAILED: {row.note}"
        lines.append(
            f"| {row.scenario} | {row.concurrency:,} | {row.tool} | {row.requests:,} | "
            f"{_num(row.served_rps, 0)} | {row.shed:,} | {row.errors:,} | {_num(row.p50_ms)} | "
            f"{_num(row.p99_ms)} | {row.cpu_machine_ms:.2f} | "
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
    rates = {int(n): rate for n, rate in scale["rps"].items()}
    one = rates.get(1) or 0.0
    # The table is scaleout.markdown's, the same one `python -m bench.scaleout --out` writes.
    lines = ["## Scale-out with CPU-capped servers", "", *scaleout_markdown(scale).splitlines()]
    lines += ["", f"![Scale-out]({SCALEOUT_PNG})", ""]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    counts = sorted(rates)
    axis.plot(counts, [rates[n] for n in counts], marker="o", label="measured (served 2xx/s)")
    axis.plot(counts, [one * n for n in counts], linestyle="--", label="linear (N x one)")
    axis.set_xticks(counts)
    axis.set_xlabel("app servers (each capped at the same CPU share)")
    axis.set_ylabel("message list, served per second")
    axis.set_title("Scale-out" + (" (QUICK MODE)" if run.plan.quick else ""))
    axis.grid(True, alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(out / SCALEOUT_PNG, dpi=110)
    plt.close(figure)
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
        *_shortfall_lines(run),
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
        *_results_table(run),
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
    # The Phase 2 section comes from its own, longer run (``bench.phase2``): keep it.
    report.write_text(section_carry_over(_text(report), "\n".join(lines).rstrip() + "\n"))
    verification.parent.mkdir(parents=True, exist_ok=True)
    verification.write_text(section_carry_over(_text(verification), _verification(run, report)))
    return [report, *plots, verification]


def _text(path: Path) -> str:
    return path.read_text() if path.exists() else ""


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
        *_shortfall_lines(run),
    ]
    return "\n".join(lines)
