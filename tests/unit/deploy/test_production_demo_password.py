"""Under the production settings the demo user's password has no default (issue 22, item 10):
the development one is printed in the README."""

import os
import subprocess
import sys

import pytest

from tests.support import REPO
from tests.unit.production_env import REQUIRED

pytestmark = pytest.mark.unit

SCRIPT = (
    "import django; django.setup(); from django.conf import settings; "
    "print(repr(settings.MESSAGING_DEMO_PASSWORD))"
)


def _demo_password(**environ: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "MESSAGING_"))}
    env = {**clean, **REQUIRED, "DJANGO_SETTINGS_MODULE": "config.settings.production", **environ}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_production_has_no_demo_password_unless_given():
    assert _demo_password() == "None"
    assert _demo_password(MESSAGING_DEMO_PASSWORD="chosen-by-the-operator") == "'chosen-by-the-operator'"
