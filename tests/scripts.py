"""Running one of the repository's Python scripts (``manage.py``, a benchmark) as a child process."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_script(
    script: str, *args: str, env: Mapping[str, str] | None = None, stdin: str = "", timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``script`` (a path from the repository root) with this interpreter, from the root,
    capturing text output; never raises on a non-zero exit (the tests assert on it)."""
    return subprocess.run(
        [sys.executable, script, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=None if env is None else dict(env),
        cwd=REPO,
        timeout=timeout,
        check=False,
    )
