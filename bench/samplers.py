"""CPU used while a measurement runs: the whole machine's, the cluster's own, the generator's.

- ``machine``: busy time from ``/proc/stat`` (all cores, every process: other work on a shared
  machine counts too), as issue-style "whole-machine CPU per request".
- ``cluster``: user+system time of the local cluster's process trees (NGINX, gunicorn and its
  workers, PgBouncer, both PostgreSQL servers and their backends, Redis, Celery), read from
  ``/proc`` before and after: the same figure without the neighbours.
- ``generator``: the load generator's own CPU (children of this process that ended: wrk,
  Locust), so a run can show the generator was not the bottleneck.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

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
