"""Every model change has its migration, and no app has two migration leaves.

Parallel branches that each add a migration to one app merge without a textual conflict but
leave two leaf nodes, which ``migrate`` refuses at deploy time; this catches it at test time.
"""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.unit


def test_models_and_migrations_agree_and_each_app_has_one_leaf():
    # given the tree as committed / when makemigrations checks it without writing anything
    result = subprocess.run(
        [sys.executable, str(REPO / "manage.py"), "makemigrations", "--check", "--dry-run", "--no-input"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    # then it finds nothing to write and no conflicting leaves
    assert result.returncode == 0, result.stdout + result.stderr
