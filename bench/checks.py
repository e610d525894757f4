"""The load test's availability and fault checks, measured in the same run as its rows: which app
servers answer behind NGINX, what the health endpoints say, PgBouncer with hundreds of clients
at once, an app server restarting under load, and ticks the jobs ledger shows run twice."""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import requests

from bench.plan import Row, Run, say
from bench.samplers import PrimaryConnections
from bench.scenarios import measure_wrk
from bench.servers import cluster_dsn
from deploy.local import cluster


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
    dsn = cluster_dsn(cfg, cfg.pgbouncer_port, connect_timeout=10)
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
    dsn = cluster_dsn(cfg, cfg.pg_primary_port, connect_timeout=3)
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
