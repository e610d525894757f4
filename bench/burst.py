"""The Sunday burst: many churches schedule the same minute. One tick, every recurring message due.

    .venv/bin/python -m bench.burst [--recipients 1000000] [--send-seconds 40]
    make bench SCALE=phase2          # after the Phase 2 data (bench.phase2)

Runs against the running cluster (``make up``) holding the Phase 2 data (10,000 churches,
1,000,000 contacts; ``bench.phase2`` seeds them). In one run:

1. **Setup.** The cluster's Celery workers and beats are stopped (started again at the end), so
   only the processes this bench starts take work. One recurring message per church, to all of
   the church's contacts, is made due at the next tick of the ``recurring-messages`` job, for
   churches biggest first until their audiences reach ``--recipients`` (about 1,000,000 whatever
   the sizes; at most ``--recurring`` churches).
2. **The tick.** The job's delivery for that tick is published as beat publishes it, and one
   Celery worker (the cluster's worker command, capped at ``--tick-cores`` of a core in a
   cgroup v1 ``cpu`` group, ``bench.cgroups``) runs it: the lock, the ledger, the
   fenced transactions. The time from the tick to the run's end is "queued within": every message
   is in the database and its send task published by then.
3. **Sending.** The send tasks are then taken by 1, 2 and 3 workers in turn (each its own
   group capped at ``--cores``, concurrency 1), each for ``--send-seconds`` after a warm-up,
   in ``--rounds`` interleaved rounds; the throughput is
   the messages the development provider recorded per second. The rest of the queue is not
   sent: at these rates the whole million would take the better part of an hour on this machine;
   the time to send it all is the total divided by the measured rate.
4. **The rest of the queue, a worker killed.** Three uncapped workers send what the measurement
   left, until no message of the burst is queued or being sent (``--no-drain`` skips it; the
   check then finds the unsent ones and the goal is not met). Every worker of the burst runs on
   the deduplicating development gateway (a provider that honours idempotency keys). Once they
   are sending, one of them is SIGKILLed with its pool process; the sweep
   (``messages_recover_stuck_sending``) finds the message it left in ``sending`` and queues it
   again, and it is resent under the same key, which the gateway answers without a second SMS.
5. **Exactly once, at the provider, for every message** (``bench.exactly_once``): every message
   reached the development provider exactly once, every recipient got exactly one SMS, and no
   call the provider recorded is unaccounted for.
6. **Cleanup.** The send queue is purged, the burst's messages, provider rows and recurring
   messages are deleted, and the cluster's workers and beats are started again.

Without a writable cgroup v1 ``cpu`` controller the workers run uncapped, and the report says so.
Writes ``bench/out/burst.md``; ``bench.phase2`` puts it into its section of ``bench/report.md``
and ``docs/phase2-verification.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psutil

from bench.burst_report import BurstResult, markdown
from bench.cgroups import CappedGroup, cgroup_problem
from bench.exactly_once import provider_check
from bench.inprocess import django_environment
from bench.servers import app_process_env
from deploy.local.cluster import REPO, VENV_BIN
from deploy.local.host import stop_process

# Sending workers get a quarter of a core each, so that three of them and the database they all
# write to fit on two cores (with half a core each, PostgreSQL ran out first); the tick's worker
# runs alone, with a core, as a server's worker would.
CORE_SHARE = float(os.environ.get("BENCH_BURST_CORE_SHARE", "0.25"))
TICK_CORE_SHARE = float(os.environ.get("BENCH_BURST_TICK_CORE_SHARE", "1.0"))
BURST_BODY = "Sunday service at 9:00: see you there! (burst)"
BURST_CRON = "0 9 * * 0"
WORKER_COUNTS = (1, 2, 3)
# The tick's delivery goes to a queue of its own, which only the tick's worker takes: the send
# tasks it publishes stay queued for the sending workers being measured.
TICK_QUEUE = "bench-burst-tick"
WARM_UP_SECONDS = 5.0
GATEWAY = "messaging.gateway.DeduplicatingDevelopmentGateway"
KILL_AFTER_SECONDS = 5.0  # into the drain: the workers are sending by then
# A message in "sending" this long after its claim has lost its worker: the live ones answer in
# milliseconds, so the sweep takes only the killed worker's.
STUCK_SECONDS = 10.0


def _django() -> None:
    django_environment("burst")
    import django
    from django.apps import apps

    if not apps.ready:  # run from bench.phase2, it is set up (and its log handlers quieted) already
        django.setup()


def _sql(query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    from django.db import connections

    from config.databases import PRIMARY_DB_ALIAS

    with connections[PRIMARY_DB_ALIAS].cursor() as cursor:
        cursor.execute(query, params or [])
        return list(cursor.fetchall()) if cursor.description else []


def _value(query: str, params: list[Any] | None = None) -> Any:
    return _sql(query, params)[0][0]


# --- the cluster's own workers and beats ---------------------------------------------------------


def _tier(cfg: Any) -> list[str]:
    return [f"{kind}-{server}" for server in cfg.server_names for kind in ("worker", "beat")]


def _purge_send_queue() -> int:
    """Drop the send tasks still queued (the bench's own: the cluster's workers are stopped)."""
    from config.celery import app

    with app.connection_for_write() as connection:
        channel: Any = connection.default_channel
        purged: int = channel.queue_purge(_send_queue()) or 0
    return purged


class Workers:
    """``count`` Celery workers as the cluster runs them (concurrency 1), each capped at ``cores``
    (None: each in a group of its own, accounted but not capped)."""

    def __init__(self, cfg: Any, count: int, cores: float | None, *, label: str, queues: str) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []
        self.groups: list[Any] = []
        folder = Path(tempfile.mkdtemp(prefix=f"bench-burst-{label}-"))
        problem = cgroup_problem()
        for index in range(1, count + 1):
            # The provider deduplicates by key, as a real one does: a message whose worker died
            # mid-send is resent under its key, never held for review (ADR 0011).
            env = {
                **app_process_env(cfg, name=f"{label}{index}", folder=folder),
                "MESSAGING_SMS_BACKEND": GATEWAY,
            }
            argv = [str(VENV_BIN / "celery"), "-A", "config", "worker", "-n",
                    f"{label}{index}@%h", "--concurrency", "1", "-Q", queues, "--loglevel", "WARNING",
                    "--without-gossip", "--without-mingle"]  # fmt: skip
            log = (folder / f"{label}{index}.log").open("ab")
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
            self.processes.append(process)
            if problem is None:
                # At once, before the pool forks: a child stays in its parent's group.
                group = CappedGroup(f"bench-burst-{os.getpid()}-{label}-{index}", cores)
                self.groups.append(group)
                group.add_tree(process.pid)
        self.folder = folder

    def stop(self) -> None:
        for process in self.processes:  # a warm shutdown: the task at hand is finished first
            stop_process(process, timeout=60)
        for group in self.groups:
            group.remove()


# --- the steps ------------------------------------------------------------------------------------


def churches_for(audiences: list[tuple[int, int]], *, recipients: int, limit: int) -> list[int]:
    """Churches, in the order given as (id, audience), until their audiences reach
    ``recipients`` (or ``limit`` churches): about that many recipients whatever the sizes."""
    chosen: list[int] = []
    total = 0
    for church_id, audience in audiences:
        if total >= recipients or len(chosen) == limit:
            break
        if audience:
            chosen.append(church_id)
            total += audience
    return chosen


def _prepare(*, recurring: int, recipients: int, interval: float) -> tuple[datetime, int, int]:
    """One recurring message per church due at the next tick, for about ``recipients`` people
    (the biggest churches first); returns (tick, made, recipients)."""
    from jobs.schedules import tick_of
    from jobs.selectors import database_now
    from messaging.models import RecurringMessage

    now = database_now()
    tick = tick_of(now, interval) + timedelta(seconds=interval)
    audiences = _sql(
        "SELECT church_id, count(*) FROM messaging_contact WHERE NOT opted_out "
        "GROUP BY church_id ORDER BY count(*) DESC, church_id"
    )
    churches = churches_for(
        [(int(church), int(size)) for church, size in audiences], recipients=recipients, limit=recurring
    )
    RecurringMessage.objects.bulk_create(
        [
            RecurringMessage(church_id=church_id, body=BURST_BODY, cron=BURST_CRON, next_run_at=tick)
            for church_id in churches
        ],
        batch_size=2000,
    )
    recipients = _value(
        "SELECT count(*) FROM messaging_contact c JOIN messaging_recurringmessage r "
        "ON r.church_id = c.church_id WHERE r.body = %s AND NOT c.opted_out",
        [BURST_BODY],
    )
    return tick, len(churches), recipients


def _run_tick(cfg: Any, *, tick: datetime, interval: float, cores: float) -> dict[str, Any]:
    """Publish the tick's delivery as beat does; one capped worker runs it. Returns the ledger row."""
    from config.celery import app
    from jobs.models import JobRun

    # The worker starts before the tick (a running server's worker is up already).
    workers = Workers(cfg, 1, cores, label="tick", queues=TICK_QUEUE)
    try:
        wait = (tick - _value("SELECT clock_timestamp()")).total_seconds()
        print(f"burst: the tick is {tick:%H:%M:%S} UTC, in {wait:.0f} s", flush=True)
        time.sleep(max(wait, 0.0))
        app.send_task(
            "messaging.recurring_messages",
            kwargs={"tick": tick.isoformat()},
            expires=max(1.0, interval * 0.9),
            queue=TICK_QUEUE,
        )
        deadline = time.monotonic() + 20 * interval
        while time.monotonic() < deadline:
            run = JobRun.objects.filter(job="recurring-messages", tick=tick, superseded=False).first()
            if run is not None and run.finished is not None:
                return {
                    "started": run.started,
                    "finished": run.finished,
                    "outcome": run.outcome,
                    "counts": run.counts,
                }
            time.sleep(0.5)
        limit = 20 * interval
        raise RuntimeError(f"the recurring-messages run of {tick} did not finish within {limit:.0f} s")
    finally:
        workers.stop()


def _send_queue() -> str:
    from config.celery import app

    return str(app.conf.task_default_queue)


def _provider_rows_since(first_id: int) -> int:
    return int(_value("SELECT count(*) FROM messaging_developmentsms WHERE id > %s", [first_id]))


def _measure_sending(
    cfg: Any, *, seconds: float, rounds: int, cores: float, first_provider_id: int
) -> dict[int, list[float]]:
    """Messages per second with 1, 2 and 3 workers, in interleaved rounds (the machine is shared)."""
    rates: dict[int, list[float]] = {count: [] for count in WORKER_COUNTS}
    for count in [count for _ in range(rounds) for count in WORKER_COUNTS]:
        workers = Workers(cfg, count, cores, label=f"send{count}-", queues=_send_queue())
        try:
            # Measured from the first sends on (a worker takes a few seconds to start), after a warm-up.
            started_waiting, first = time.monotonic(), _provider_rows_since(first_provider_id)
            while _provider_rows_since(first_provider_id) == first:
                if time.monotonic() - started_waiting > 120:
                    raise RuntimeError(f"{count} worker(s) sent nothing within 120 s: see {workers.folder}")
                time.sleep(0.5)
            time.sleep(WARM_UP_SECONDS)
            before, started = _provider_rows_since(first_provider_id), time.monotonic()
            time.sleep(seconds)
            after, ended = _provider_rows_since(first_provider_id), time.monotonic()
        finally:
            workers.stop()
        rates[count].append((after - before) / (ended - started))
        print(f"burst: {count} worker(s): {rates[count][-1]:,.0f} messages/s", flush=True)
    return rates


def _unfinished() -> int:
    """Messages of the burst still queued or being sent."""
    return int(
        _value(
            "SELECT count(*) FROM messaging_message WHERE recurring_message_id IN "
            "(SELECT id FROM messaging_recurringmessage WHERE body = %s) AND status IN ('queued', 'sending')",
            [BURST_BODY],
        )
    )


def _kill_one(workers: Workers) -> int:
    """SIGKILL the first worker and its pool process at once, whatever they are doing."""
    master = psutil.Process(workers.processes[0].pid)
    tree = [master, *master.children(recursive=True)]
    for process in tree:
        with contextlib.suppress(psutil.Error):
            process.kill()
    workers.processes[0].wait(timeout=30)
    return master.pid


def _drain(cfg: Any, result: BurstResult, *, workers: int, timeout: float) -> None:
    """Send what the measurement left with uncapped workers, one of them SIGKILLed once sending
    is under way; its message left in ``sending`` is found by the sweep and resent under its key."""
    from messaging.gateway import DeduplicatingDevelopmentGateway
    from messaging.sending.services import messages_recover_stuck_sending

    started = time.monotonic()
    senders = Workers(cfg, workers, None, label="drain", queues=_send_queue())
    try:
        time.sleep(KILL_AFTER_SECONDS)
        result.killed = f"pid {_kill_one(senders)} at {time.monotonic() - started:.0f} s into the drain"
        print(f"burst: sending worker SIGKILLed ({result.killed})", flush=True)
        while time.monotonic() - started < timeout:
            time.sleep(10)
            recovered = messages_recover_stuck_sending(
                older_than=timedelta(seconds=STUCK_SECONDS), gateway=DeduplicatingDevelopmentGateway()
            )
            result.resent += recovered.requeued
            result.held_for_review += recovered.held_for_review
            left = _unfinished()
            print(
                f"burst: {left:,} messages left to send ({result.resent} resent after the kill)", flush=True
            )
            if not left:
                break
    finally:
        senders.processes = [process for process in senders.processes if process.poll() is None]
        senders.stop()
    result.drain_seconds = time.monotonic() - started


def _cleanup(first_provider_id: int) -> None:
    purged = _purge_send_queue()
    burst = "SELECT id FROM messaging_recurringmessage WHERE body = %s"
    _sql(f"DELETE FROM messaging_message WHERE recurring_message_id IN ({burst})", [BURST_BODY])
    _sql("DELETE FROM messaging_developmentsms WHERE id > %s", [first_provider_id])
    _sql("DELETE FROM messaging_recurringmessage WHERE body = %s", [BURST_BODY])
    print(f"burst: cleaned up ({purged:,} send tasks purged)", flush=True)


def run(args: argparse.Namespace) -> BurstResult:
    _django()
    from django.conf import settings

    from deploy.local import cluster

    cfg = cluster.Settings()
    interval = float(settings.MESSAGING_RECURRING_MESSAGES_INTERVAL_SECONDS)
    result = BurstResult(interval=interval)
    problem = cgroup_problem()
    result.capped = (
        f"the tick's worker capped at {args.tick_cores:g} core, each sending worker at "
        f"{args.cores:g} of a core (cgroup v1 cpu quota)"
        if problem is None
        else f"workers uncapped: {problem}"
    )
    first_provider_id = int(_value("SELECT coalesce(max(id), 0) FROM messaging_developmentsms"))
    tier = _tier(cfg)
    cluster.stop(tier, cfg)
    try:
        _cleanup(first_provider_id)  # what an interrupted run left behind
        prepared = _prepare(recurring=args.recurring, recipients=args.recipients, interval=interval)
        result.tick, result.recurring, result.recipients = prepared
        print(f"burst: {result.recurring:,} recurring messages, {result.recipients:,} recipients", flush=True)
        result.load.append(os.getloadavg()[0])
        run = _run_tick(cfg, tick=result.tick, interval=interval, cores=args.tick_cores)
        result.queued_seconds = (run["finished"] - result.tick).total_seconds()
        result.run_seconds = (run["finished"] - run["started"]).total_seconds()
        result.run_counts = dict(run["counts"])
        if run["outcome"] != "success":
            raise RuntimeError(f"the burst's tick ended {run['outcome']}: {run}")
        print(f"burst: {result.run_counts} by {result.queued_seconds:.1f} s after the tick", flush=True)
        result.load.append(os.getloadavg()[0])
        result.rounds = _measure_sending(
            cfg,
            seconds=args.send_seconds,
            rounds=args.rounds,
            cores=args.cores,
            first_provider_id=first_provider_id,
        )
        result.load.append(os.getloadavg()[0])
        if args.drain:
            _drain(cfg, result, workers=max(WORKER_COUNTS), timeout=args.drain_timeout)
        result.provider = provider_check(body=BURST_BODY, first_provider_id=first_provider_id)
    finally:
        try:
            _cleanup(first_provider_id)
        finally:
            for name in tier:
                cluster.start_service(cluster.services(cfg)[name], cfg)
    return result


DEFAULTS: dict[str, Any] = {
    "recurring": 10_000,
    "recipients": 1_000_000,
    "send_seconds": 30.0,
    "rounds": 2,
    "cores": CORE_SHARE,
    "tick_cores": TICK_CORE_SHARE,
    "drain": True,
    "drain_timeout": 7200.0,
}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--recurring", type=int, default=DEFAULTS["recurring"], help="one per church, at most"
    )
    parser.add_argument(
        "--recipients", type=int, default=DEFAULTS["recipients"], help="about this many, whatever the sizes"
    )
    parser.add_argument(
        "--send-seconds", type=float, default=DEFAULTS["send_seconds"], help="measured seconds per step"
    )
    parser.add_argument("--rounds", type=int, default=DEFAULTS["rounds"], help="rounds of 1, 2, 3 workers")
    parser.add_argument("--cores", type=float, default=DEFAULTS["cores"], help="each sending worker's CPU")
    parser.add_argument("--tick-cores", type=float, default=DEFAULTS["tick_cores"], help="tick worker CPU")
    parser.add_argument(
        "--no-drain", dest="drain", action="store_false", help="leave the rest of the queue unsent"
    )
    parser.add_argument(
        "--drain-timeout", type=float, default=DEFAULTS["drain_timeout"], help="seconds to send the rest"
    )
    args = parser.parse_args(argv)
    if min(args.recurring, args.recipients, args.send_seconds, args.rounds, args.cores, args.tick_cores) <= 0:
        parser.error("--recurring, --send-seconds, --rounds, --cores and --tick-cores must be positive")
    result = run(args)
    section = markdown(result)
    sys.stdout.write(section)
    out = REPO / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "burst.md").write_text(section)
    return 0 if result.rates else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
