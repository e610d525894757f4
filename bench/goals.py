"""The load test's goals (issue 17's, at the headline concurrency): each one with what the run
measured and whether it was met, and for each one missed, why (from the run's own figures) and the
next step. ``report.md`` and ``phase2-verification.md`` show the same table."""

from __future__ import annotations

from typing import Any

from bench import scaleout
from bench.plan import Run
from bench.scenarios import MIX_SCENARIO


def number(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


def goals(run: Run) -> list[tuple[str, str, bool | None]]:
    """(goal, what was measured, met) for the load test's goals (issue 17's, at the headline level)."""
    low, high = run.plan.headline
    out: list[tuple[str, str, bool | None]] = []
    health, bare = run.row("/health", low), run.row("bare WSGI", low)
    live, messages = run.row("/health/live", low), run.row("message list", low)
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
            rates = f"{number(top.served_rps, 0)} vs {number(bottom.served_rps, 0)} req/s{suffix}"
            out.append((title, f"{ratio:.2f}{unit} ({rates})", ratio >= floor))
    if messages:
        out.append(
            (
                f"message list p99 < 250 ms at {low} connections",
                f"{number(messages.p99_ms)} ms ({number(messages.served_rps, 0)} req/s, "
                f"{messages.errors} errors)",
                messages.p99_ms < 250 and messages.errors == 0,
            )
        )
    overload: dict[str, Any] = run.facts.get("overload") or {}
    for scenario in ("/health", "message list"):
        flood = run.row(scenario, high)
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
        after = run.row(f"{scenario}, right after {high:,}", low)
        before = run.row(scenario, low)
        if after and before and before.served_rps:
            ratio = after.served_rps / before.served_rps
            out.append(
                (
                    f"{scenario}: throughput back within 10 s after the flood",
                    f"{ratio:.2f}x of the rate before it ({number(after.served_rps, 0)} vs "
                    f"{number(before.served_rps, 0)} req/s)",
                    ratio >= 0.8,
                )
            )
    mix = run.row(MIX_SCENARIO, low)
    if mix:
        out.append(
            (
                "realistic mix ≤ 4.0 ms of whole-machine CPU per request (many churches, writes interleaved)",
                f"{mix.cpu_machine_ms:.2f} ms ({number(mix.served_rps, 0)} req/s, {mix.errors} errors; "
                f"the cluster's own processes: {mix.cpu_cluster_ms:.2f} ms)",
                mix.ok and mix.errors == 0 and mix.cpu_machine_ms <= 4.0,
            )
        )
    open_loop = next((r for r in run.rows if r.scenario.startswith("open loop")), None)
    if open_loop:
        out.append(
            (
                "open loop at 70 % of capacity: p99 from the scheduled time ≤ 100 ms, 0 errors",
                f"p99 {number(open_loop.p99_ms)} ms; {number(open_loop.served_rps, 0)} served/s, "
                f"{open_loop.shed} shed, {open_loop.errors} errors; "
                f"load generator {open_loop.generator_cores:.2f} cores (its own cgroup)",
                open_loop.ok and open_loop.errors == 0 and open_loop.shed == 0 and open_loop.p99_ms <= 100,
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

    live, messages = run.row("/health/live", low), run.row("message list", low)
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
    health, bare = run.row("/health", low), run.row("bare WSGI", low)
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
            f"{number(messages.served_rps, 0)} req/s: by Little's law a request spends {mean:.0f} ms in "
            f"the system on average (p50 {number(messages.p50_ms)} ms), and with wrk, NGINX, the app "
            f"servers' processes, PgBouncer and both PostgreSQL servers scheduled on two cores the "
            f"slowest 1 % wait {messages.p99_ms / mean:.0f}x that. Next step: measure with the load "
            "generator and the databases on machines of their own; at the edge, admit per server no "
            "more than it serves at once (`max_conns` near workers x threads) so that waiting "
            "happens in NGINX's queue rather than behind a busy worker's threads."
        )
    overload: dict[str, Any] = run.facts.get("overload") or {}
    for scenario in ("/health", "message list"):
        facts = overload.get(scenario, {})
        flood = run.row(scenario, high)
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
    errors = scaleout.measurement_errors(scale)
    out: list[tuple[str, str, bool | None]] = []
    servers, goal = scaleout.MAX_SERVERS, 3.6
    if servers in rates:
        speedup = rates[servers] / rates[1]
        out.append(
            (
                f"scale-out: {servers} CPU-capped servers ≥ {goal}x one, rotated rounds",
                f"{speedup:.2f}x ({number(rates[servers], 0)} vs {number(rates[1], 0)} req/s)",
                speedup >= goal and not errors,
            )
        )
    highest = max(scaleout.efficiencies(rates).values())
    out.append(
        (
            f"scale-out: no cell above {scaleout.EFFICIENCY_LIMIT} efficiency, the one-server baseline "
            f"used ≥ {scaleout.BASELINE_QUOTA_FLOOR:.0%} of its quota",
            f"highest efficiency {highest:.2f}; one server used {scale.get('quota_used', {}).get('1', 0):.0%}"
            + (f"; measurement errors: {'; '.join(errors)}" if errors else ""),
            not errors,
        )
    )
    return out


def shortfall_lines(run: Run) -> list[str]:
    reasons = shortfalls(run)
    return ["Goals not met in this run: why, and the next step.", "", *reasons, ""] if reasons else []


def mark(met: bool | None) -> str:
    return {True: "met", False: "**not met**", None: "-"}[met]


def goal_lines(run: Run) -> list[str]:
    """The goals as a markdown table, then the reasons for the ones missed."""
    return [
        "| goal | measured | |",
        "|---|---|---|",
        *[f"| {goal} | {measured} | {mark(met)} |" for goal, measured, met in goals(run)],
        "",
        *shortfall_lines(run),
    ]
