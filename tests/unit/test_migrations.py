"""Every model change has its migration, and no app has two migration leaves.

Parallel branches that each add a migration to one app merge without a textual conflict but
leave two leaf nodes, which ``migrate`` refuses at deploy time; this catches it at test time.
"""

import pytest

from tests.support import manage

pytestmark = pytest.mark.unit


def test_models_and_migrations_agree_and_each_app_has_one_leaf():
    # given the tree as committed / when makemigrations checks it without writing anything
    result = manage("makemigrations", "--check", "--dry-run", "--no-input", timeout=120)
    # then it finds nothing to write and no conflicting leaves
    assert result.returncode == 0, result.stdout + result.stderr
