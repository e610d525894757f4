"""Production settings fail fast and pass Django's deployment checks."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SECRET = "x" * 20 + "-production-secret-key-with-enough-entropy-0123456789"

pytestmark = pytest.mark.unit


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DB_PASSWORD", "MESSAGING_"))
    }
    return subprocess.run(
        [sys.executable, str(REPO / "manage.py"), *args],
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings.production", **env},
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )


REQUIRED = {
    "DJANGO_SECRET_KEY": SECRET,
    "DJANGO_ALLOWED_HOSTS": "example.org",
    "DB_PASSWORD": "p",
    "MESSAGING_WEBHOOK_SECRET": "s",
}


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_production_refuses_to_start_without_a_required_variable(missing):
    # given
    env = {name: value for name, value in REQUIRED.items() if name != missing}
    # when
    result = _manage("check", env=env)
    # then
    assert result.returncode != 0
    assert f"Set the {missing} environment variable" in result.stderr


def test_production_passes_the_deployment_checks():
    # when
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=REQUIRED)
    # then
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout
