"""What the benchmarks sample while a measurement runs: CPU, and the primary's server connections.

CPU used while a measurement runs (:class:`CpuMeter`): the whole machine's, the cluster's own,
the generator's.

- ``machine``: busy time from ``/proc/stat`` (all cores, every process: other work on a shared
  machine counts too), as issue-style "whole-machine CPU per request".
- ``cluster``: user+system time of the local cluster's process trees (NGINX, gunicorn and its
  workers, PgBouncer, both PostgreSQL servers and their backends, Redis, Celery), read from
  ``/proc`` before and after: the same figure without the neighbours.
- ``generator``: the load generator's own CPU (children of this process that ended: wrk,
  Locust), so a run can show the generator was not the bottleneck.

:class:`PrimaryConnections` counts the server connections on the PostgreSQL primary every quarter
second in a background thread: PgBouncer is meant to keep them few whatever the load.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg

from bench.servers import cluster_dsn
from deploy.local import cluster

TICKS = os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    fields = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / TICKS


def _tree_seconds(roots: list[int]) -> float:
    total = 0.0
    seen: set[int] = set()
    for root in roots:
        try:
            processes = [psutil.Process(root)]
            processes += processes[0].children(recursive=True)
        except psutil.Error:
            continue
        for process in processes:
            if process.pid in seen:
                continue
            seen.add(process.pid)
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            # children_*: workers that ended and were reaped (gunicorn recycles them) still count
            total += times.user + times.system + times.children_user + times.children_system
    return total


def _children_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class CpuUse:
    seconds: float  # wall time of the measurement
    machine: float  # CPU-seconds, all cores
    cluster: float
    generator: float

    def per_request_ms(self, requests: int) -> tuple[float, float]:
        """(machine, cluster) CPU milliseconds per request."""
        count = max(requests, 1)
        return self.machine * 1000 / count, self.cluster * 1000 / count


class CpuMeter:
    """``with CpuMeter(pids) as meter: ...`` then ``meter.use``."""

    def __init__(self, cluster_pids: list[int]) -> None:
        self.pids = cluster_pids
        self.use = CpuUse(0.0, 0.0, 0.0, 0.0)

    def __enter__(self) -> CpuMeter:
        self._start = (
            time.monotonic(),
            machine_busy_seconds(),
            _tree_seconds(self.pids),
            _children_seconds(),
        )
        return self

    def __exit__(self, *_: object) -> None:
        wall, machine, cluster, children = self._start
        self.use = CpuUse(
            seconds=time.monotonic() - wall,
            machine=machine_busy_seconds() - machine,
            cluster=max(_tree_seconds(self.pids) - cluster, 0.0),
            generator=_children_seconds() - children,
        )


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
        dsn = cluster_dsn(self.cfg, self.cfg.pg_primary_port, connect_timeout=3)
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
