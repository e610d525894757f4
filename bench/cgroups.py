"""CPU caps for a benchmark's own processes: a cgroup v1 ``cpu`` group per process tree.

On a 2-core machine, servers that share the same cores add nothing when there are more of
them. Capping each one's process group (``cpu.cfs_quota_us`` over ``cpu.cfs_period_us``;
writable by root here) at a fraction of a core makes N of them N times the CPU, as N machines
would be. ``bench.scaleout`` caps app servers this way, ``bench.burst`` Celery workers.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import psutil

CGROUP_CPU = Path("/sys/fs/cgroup/cpu")


def cgroup_problem() -> str | None:
    """Why capped servers cannot be measured here, or None."""
    quota = CGROUP_CPU / "cpu.cfs_quota_us"
    if not quota.exists():
        return f"no cgroup v1 cpu controller at {CGROUP_CPU} (cgroup v2 cpu.max is not handled)"
    if not os.access(CGROUP_CPU, os.W_OK):
        return f"{CGROUP_CPU} is not writable (run as root)"
    return None


class CappedGroup:
    """A cgroup v1 ``cpu`` group limited to ``cores`` of CPU time."""

    def __init__(self, name: str, cores: float) -> None:
        self.path = CGROUP_CPU / name
        self.path.mkdir(exist_ok=True)
        period = int((self.path / "cpu.cfs_period_us").read_text())
        (self.path / "cpu.cfs_quota_us").write_text(str(int(period * cores)))
        # A high weight so that a busy machine still gives each server its quota: the quota caps
        # the four together at one core, so neighbours keep the rest.
        (self.path / "cpu.shares").write_text("4096")

    def add_tree(self, pid: int) -> None:
        process = psutil.Process(pid)
        for member in [process, *process.children(recursive=True)]:
            with contextlib.suppress(OSError):
                (self.path / "cgroup.procs").write_text(str(member.pid))

    def remove(self) -> None:
        # Anything still inside goes back to the root group first; then the group can go.
        for line in (self.path / "cgroup.procs").read_text().split():
            with contextlib.suppress(OSError):
                (CGROUP_CPU / "cgroup.procs").write_text(line)
        with contextlib.suppress(OSError):
            self.path.rmdir()
