"""Runs a benchmark in its quick mode, as the cluster tests do so that no benchmark rots between
its full runs: its numbers mean nothing there, only that it ran and wrote its report."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from deploy.local.cluster import REPO


def run_quick(command: list[str], out: Path, *, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """``python COMMAND --quick --out OUT`` from the repository; fails the test with the end of
    its output unless it exited 0."""
    completed = subprocess.run(
        [sys.executable, *command, "--quick", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    return completed
