"""Benchmark of read/write splitting, against the running local cluster.

    .venv/bin/python bench/replicas/bench_replicas.py           # full run (about a minute)
    .venv/bin/python bench/replicas/bench_replicas.py --quick   # a few seconds, for the test

1. The router's per-query overhead: the same primary-key read through the router (which picks
   the healthy replica) and with a fixed ``.using("replica")``, alternated in rounds; the
   median per query of each, and the router's own decision cost in microseconds.
   Goal (issue 7): at most 5 % over the fixed alias.
2. HTTP through NGINX with wrk: the diagnostic read endpoint (``/replicas/debug/probes/<id>``)
   and the messaging API's message list (``/api/messages``, bearer token of the first staff
   member, when one exists), each with reads on the replica versus all on the primary (the
   debug-only ``X-Replicas-Primary-Only`` header); req/s and p99.

Writes the markdown report to ``bench/out/replicas.md`` (``--out`` to change) and prints it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

# Run as a script (python bench/...py), not a module: the repository root is found from this
# file, since nothing of the project can be imported before it is on sys.path.
REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
DEFAULT_OUT = REPO / "bench" / "out" / "replicas.md"


def router_overhead(rounds: int, queries: int) -> dict[str, float]:
    from django.db import router

    from replicas.context import unit_of_work
    from replicas.models import RoutingProbe
    from replicas.monitor import monitor
    from replicas.services import routing_probe_create

    probe = routing_probe_create(note="bench")
    time.sleep(1.0)  # let the replica replay it (the local primary commits asynchronously)
    monitor.refresh()
    with unit_of_work():
        assert router.db_for_read(RoutingProbe) == "replica", "the replica is not healthy"

        def routed() -> None:
            RoutingProbe.objects.filter(pk=probe.pk).first()

        def fixed() -> None:
            RoutingProbe.objects.using("replica").filter(pk=probe.pk).first()

        per_query: dict[str, list[float]] = {"routed": [], "fixed": []}
        ratios = []
        for round_number in range(rounds):
            # Alternate which goes first, so drift on a shared machine hits both alike.
            order = (("routed", routed), ("fixed", fixed))
            for name, step in order if round_number % 2 == 0 else order[::-1]:
                started = time.perf_counter()
                for _ in range(queries):
                    step()
                per_query[name].append((time.perf_counter() - started) / queries * 1e6)
            ratios.append(per_query["routed"][-1] / per_query["fixed"][-1])
        decisions = 20_000 if queries > 100 else 2_000
        started = time.perf_counter()
        for _ in range(decisions):
            router.db_for_read(RoutingProbe)
        decision_us = (time.perf_counter() - started) / decisions * 1e6
    routed_us = statistics.median(per_query["routed"])
    fixed_us = statistics.median(per_query["fixed"])
    return {
        "routed_us": routed_us,
        "fixed_us": fixed_us,
        "overhead_pct": (statistics.median(ratios) - 1) * 100,
        # The fastest round of each: the least disturbed by the machine's other load.
        "best_overhead_pct": (min(per_query["routed"]) / min(per_query["fixed"]) - 1) * 100,
        "decision_us": decision_us,
    }


def wrk(url: str, seconds: int, connections: int, headers: dict[str, str]) -> dict[str, float]:
    from bench.generators import wrk_latency

    found = wrk_latency(url, connections=connections, seconds=seconds, headers=headers)
    if found.rps is None:
        raise RuntimeError(f"cannot read wrk's output:\n{found.output}")
    return {
        "rps": found.rps,
        "p99_ms": found.p99_ms if found.p99_ms is not None else float("nan"),
        "errors": float(found.non_2xx),
    }


def api_headers() -> dict[str, str] | None:
    """A bearer token for the first staff member (and NGINX's rate-limit bypass), if any exist."""
    from messaging.models import StaffMember
    from messaging.tokens.services import api_token_create

    staff = StaffMember.objects.select_related("user").order_by("id").first()
    if staff is None:
        return None
    headers = {"Authorization": f"Bearer {api_token_create(user=staff.user)}"}
    bypass = REPO / ".cluster" / "ratelimit-bypass-token"
    if bypass.exists():
        headers["X-RateLimit-Bypass"] = bypass.read_text().strip()
    return headers


def http_comparison(seconds: int, connections: int, rounds: int) -> dict[str, dict[str, float]]:
    from replicas.middleware import PRIMARY_ONLY_HEADER
    from replicas.services import routing_probe_create

    base = os.environ["EDGE_URL"]  # the edge pair's virtual address, from .cluster/cluster.env
    probe = routing_probe_create(note="bench-http")
    targets: dict[str, tuple[str, dict[str, str]]] = {
        "`GET /replicas/debug/probes/<id>`": (f"{base}/replicas/debug/probes/{probe.pk}", {})
    }
    headers = api_headers()
    if headers is not None:
        targets["`GET /api/messages` (message list)"] = (f"{base}/api/messages?limit=20", headers)
    time.sleep(1.0)  # the replica replays the probe and the token (asynchronous commit locally)
    cases = {
        f"{endpoint}, reads on the {where}": (
            url,
            {**extra, **({PRIMARY_ONLY_HEADER: "1"} if where == "primary" else {})},
        )
        for endpoint, (url, extra) in targets.items()
        for where in ("replica", "primary")
    }
    for url, case_headers in cases.values():
        wrk(url, 1, connections, case_headers)  # warm the workers' connections and lag measurements
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in cases}
    for _ in range(rounds):  # interleaved rounds, medians: the machine is shared
        for name, (url, case_headers) in cases.items():
            runs[name].append(wrk(url, seconds, connections, case_headers))
    return {
        name: {
            "rps": statistics.median(row["rps"] for row in rows),
            "p99_ms": statistics.median(row["p99_ms"] for row in rows),
            "errors": sum(row["errors"] for row in rows),
        }
        for name, rows in runs.items()
    }


def report(overhead: dict[str, float], http: dict[str, dict[str, float]] | None, quick: bool) -> str:
    decision_share = overhead["decision_us"] / overhead["fixed_us"] * 100
    lines = [
        "# Read replicas benchmark" + (" (quick mode)" if quick else ""),
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())} on the local cluster (2 cores, "
        "shared with every other process of the cluster).",
        "",
        "## Router overhead per query (primary-key read on the replica)",
        "",
        "| path | median µs per query |",
        "|---|---|",
        f"| fixed alias `.using('replica')` | {overhead['fixed_us']:.1f} |",
        f"| through the router | {overhead['routed_us']:.1f} |",
        "",
        "Overhead (median of the per-round ratios, rounds alternated): "
        f"**{overhead['overhead_pct']:+.1f} %** (goal ≤ 5 %); fastest round against fastest round: "
        f"{overhead['best_overhead_pct']:+.1f} %; the routing decision alone: "
        f"{overhead['decision_us']:.2f} µs ({decision_share:.1f} % of a query).",
    ]
    if http is not None:
        lines += [
            "",
            "## HTTP through NGINX (wrk, 2 threads; median of interleaved rounds)",
            "",
            "The primary-only baseline is the same request with the debug-only header "
            "`X-Replicas-Primary-Only: 1` (every read of the request on the primary).",
            "",
            "| endpoint, reads | req/s | p99 ms | non-2xx |",
            "|---|---|---|---|",
        ]
        for name, row in http.items():
            lines.append(f"| {name} | {row['rps']:.0f} | {row['p99_ms']:.1f} | {row['errors']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds: prove the script runs")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()

    import django

    django.setup()
    overhead = router_overhead(rounds=4 if args.quick else 30, queries=50 if args.quick else 300)
    http = None
    if shutil.which("wrk"):
        http = http_comparison(
            seconds=1 if args.quick else 5, connections=args.connections, rounds=1 if args.quick else 3
        )
    text = report(overhead, http, args.quick)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
