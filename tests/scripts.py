"""Kept for the modules that still import it from here; the harness is ``tests.support``."""

from tests.support import REPO, run_script

__all__ = ["REPO", "run_script"]
