"""CPU caps and CPU accounts for a benchmark's own processes: a cgroup v1 group per process tree.

On a 2-core machine, servers that share the same cores add nothing when there are more of
them. Capping each one's process group (``cpu.cfs_quota_us`` over ``cpu.cfs_period_us``;
writable by root here) at a fraction of a core makes N of them N times the CPU, as N machines
would be. ``bench.scaleout`` caps app servers this way, ``bench.burst`` Celery workers.

A cap alone proves nothing: a server that waited on something else never used its share, and a
ratio against it is not scale-out. Every group is also a ``cpuacct`` group (its own hierarchy
here, ``/sys/fs/cgroup/cpuacct``; the same folder where ``cpu,cpuacct`` are mounted together),
so :meth:`CappedGroup.usage_seconds` reads the CPU its processes used (``cpuacct.usage``) and
:func:`quota_used` sets it against the quota. A group made with ``cores=None`` is accounted
but not capped: the open-loop generator runs in one so that its own CPU is reported.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import psutil

CGROUP_CPU = Path("/sys/fs/cgroup/cpu")
CGROUP_CPUACCT = Path("/sys/fs/cgroup/cpuacct")


def cgroup_problem() -> str | None:
    """Why capped servers cannot be measured here, or None."""
    quota = CGROUP_CPU / "cpu.cfs_quota_us"
    if not quota.exists():
        return f"no cgroup v1 cpu controller at {CGROUP_CPU} (cgroup v2 cpu.max is not handled)"
    if not os.access(CGROUP_CPU, os.W_OK):
        return f"{CGROUP_CPU} is not writable (run as root)"
    if not (CGROUP_CPU / "cpuacct.usage").exists() and not (CGROUP_CPUACCT / "cpuacct.usage").exists():
        return f"no cgroup v1 cpuacct controller (neither {CGROUP_CPU} nor {CGROUP_CPUACCT})"
    return None


def quota_used(*, usage_seconds: float, wall_seconds: float, cores: float) -> float:
    """The share of its quota a capped group used over ``wall_seconds`` (1.0: all of it)."""
    if wall_seconds <= 0 or cores <= 0:
        return 0.0
    return usage_seconds / (wall_seconds * cores)


class CappedGroup:
    """A cgroup v1 ``cpu`` group limited to ``cores`` of CPU time (None: not limited), and the
    ``cpuacct`` group of the same name that counts what its processes used."""

    def __init__(self, name: str, cores: float | None) -> None:
        self.cores = cores
        self.path = CGROUP_CPU / name
        self.path.mkdir(exist_ok=True)
        # cpu and cpuacct are separate hierarchies here; mounted together, one folder has both.
        together = (CGROUP_CPU / "cpuacct.usage").exists()
        self.account = self.path if together else CGROUP_CPUACCT / name
        self.account.mkdir(exist_ok=True)
        if cores is not None:
            period = int((self.path / "cpu.cfs_period_us").read_text())
            (self.path / "cpu.cfs_quota_us").write_text(str(int(period * cores)))
            # A high weight so that a busy machine still gives each server its quota: the quota
            # caps the four together at one core, so neighbours keep the rest.
            (self.path / "cpu.shares").write_text("4096")

    def add_tree(self, pid: int) -> None:
        process = psutil.Process(pid)
        for member in [process, *process.children(recursive=True)]:
            for folder in {self.path, self.account}:
                with contextlib.suppress(OSError):
                    (folder / "cgroup.procs").write_text(str(member.pid))

    def usage_seconds(self) -> float:
        """CPU time the group's processes used since it was made (``cpuacct.usage``, ns)."""
        return int((self.account / "cpuacct.usage").read_text()) / 1e9

    def throttled(self) -> tuple[int, int]:
        """(periods, periods in which the quota ran out) from ``cpu.stat``."""
        fields = dict(line.split() for line in (self.path / "cpu.stat").read_text().splitlines() if line)
        return int(fields.get("nr_periods", 0)), int(fields.get("nr_throttled", 0))

    def remove(self) -> None:
        # Anything still inside goes back to the root group first; then the group can go.
        for folder, root in {(self.path, CGROUP_CPU), (self.account, self.account.parent)}:
            for line in (folder / "cgroup.procs").read_text().split():
                with contextlib.suppress(OSError):
                    (root / "cgroup.procs").write_text(line)
            with contextlib.suppress(OSError):
                folder.rmdir()
