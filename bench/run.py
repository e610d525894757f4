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
   gunicorn, PgBouncer), whose own reports are copied into this one;
6. the availability run follows as a step of ``make bench`` of its own (``bench.availability``:
   10 minutes, each component killed once), whose section of ``report.md`` this run keeps.

While it runs, the number of server connections on the PostgreSQL primary is sampled every
quarter second. It writes ``report.md``, two PNG plots and ``phase2-verification.md``
(``bench/`` and ``docs/`` for a full run; ``--out`` for a quick one). Goals are reported, never
asserted: the numbers are what this machine did.

Every load generator sends NGINX's rate-limit bypass header (``X-RateLimit-Bypass``, the
cluster's token); without it the per-client limits would be what is measured.

This module runs the steps in order; the parts live in their own modules: ``bench.plan`` (the
plan, the rows, the run), ``bench.generators`` (wrk and Locust), ``bench.samplers`` (CPU, the
primary's connections), ``bench.baselines``, ``bench.scenarios`` (a row each), ``bench.checks``
(availability and fault checks) and the report: ``bench.report``, ``bench.goals``,
``bench.plots``, ``bench.verification``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import scaleout
from bench.baselines import baseline_servers
from bench.checks import (
    health_answers,
    job_duplicates,
    pgbouncer_clients,
    restart_during_load,
    servers_behind_nginx,
)
from bench.plan import Plan, Run, say
from bench.report import results_table, write
from bench.samplers import PrimaryConnections
from bench.scenarios import MIX_SCENARIO, flood, measure_locust, measure_wrk, open_loop
from bench.servers import PY, login_token
from deploy.local import cluster
from deploy.local.cluster import REPO
from deploy.local.host import raise_file_limit

BENCH = REPO / "bench"


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
         "--messages", str(plan.messages), "--mix-churches", str(plan.mix_churches), "--out", str(fixture)],
        cwd=REPO, check=True, timeout=1800,
    )  # fmt: skip
    data: dict[str, object] = json.loads(fixture.read_text())
    return data


def execute(plan: Plan, out: Path) -> Run:
    raise_file_limit()
    cfg = cluster.Settings()
    run = Run(plan)
    out.mkdir(parents=True, exist_ok=True)
    bypass = {"X-RateLimit-Bypass": cfg.ratelimit_bypass_token()}
    nginx = cfg.edge_url()
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
        # Many churches' staff (cold token caches), pages, single messages, the contact filter,
        # sends and delivery reports interleaved; the Celery workers' sending counts in the CPU.
        note = f"the staff of {len(data.get('mix') or [])} churches, a random one each request"  # type: ignore[arg-type]
        measure_locust(
            run, sampler, users=plan.locust_users[0], fixture=fixture, out=out, think=(0.0, 0.0),
            scenario=MIX_SCENARIO, extra_env={"BENCH_MIX": "1", "BENCH_NOTE": note},
        )  # fmt: skip
        # An open loop at 70 % of the capacity the message list just showed at the headline
        # concurrency: arrivals on a schedule, latency from each one's scheduled time.
        headline = run.row("message list", plan.headline[0])
        capacity = headline.served_rps if headline else 0.0
        if capacity:
            open_loop(
                run, sampler, f"{nginx}{messages_path}", api, capacity, cafile=verify,
                max_connections=plan.locust_users[1],
            )  # fmt: skip
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


def open_loop_only(plan: Plan, capacity: float) -> int:
    """The open-loop row alone, against a capacity measured before (for re-measuring it)."""
    raise_file_limit()
    cfg = cluster.Settings()
    bypass = {"X-RateLimit-Bypass": cfg.ratelimit_bypass_token()}
    nginx = cfg.edge_url()
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
            run, sampler, f"{nginx}/api/messages?limit=50", api, capacity,
            cafile=str(cfg.state_dir / "nginx" / "tls.crt"), max_connections=plan.locust_users[1],
        )  # fmt: skip
    finally:
        sampler.stop()
    say("\n".join(results_table(run)))
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
    verification = (
        out / "phase2-verification.md" if plan.quick or args.out else REPO / "docs" / "phase2-verification.md"
    )
    written = write(run, out=out, verification=verification)
    for path in written:
        say(f"wrote {path}")
    errors = scaleout.measurement_errors(run.facts.get("scaleout") or {})
    for error in errors:
        say(f"scale-out measurement error (the run fails): {error}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
