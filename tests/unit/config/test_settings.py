"""Production settings fail fast and pass Django's deployment checks."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO, manage
from tests.unit.production_env import REQUIRED, SECRET_KEY

pytestmark = pytest.mark.unit


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("DJANGO_", "DB_PASSWORD", "MESSAGING_", "HEALTH_", "LOCK_REDIS_", "BROKER_REDIS_")
        )
    }
    return manage(*args, env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings.production", **env})


ONE_LINE = "error: Set the {} environment variable (production has no default).\n"


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_production_refuses_to_start_without_a_required_variable_in_one_line(missing):
    # given
    env = {name: value for name, value in REQUIRED.items() if name != missing}
    # when
    result = _manage("check", env=env)
    # then: exit 1 and one line naming it, no traceback
    assert result.returncode == 1
    assert result.stderr == ONE_LINE.format(missing)


def test_every_missing_variable_is_named_at_once():
    result = _manage("check", env={"DJANGO_SECRET_KEY": SECRET_KEY, "DB_PASSWORD": "p"})
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    for name in set(REQUIRED) - {"DJANGO_SECRET_KEY", "DB_PASSWORD"}:
        assert name in result.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["celery", "-A", "config", "worker"],
        ["celery", "-A", "config", "beat"],
        ["gunicorn", "-c", "deploy/gunicorn/gunicorn.conf.py", "--bind", "127.0.0.1:0", "config.wsgi"],
    ],
    ids=["worker", "beat", "gunicorn"],
)
def test_the_servers_stop_at_start_with_the_same_one_line(argv):
    env = {name: value for name, value in REQUIRED.items() if name != "MESSAGING_WEBHOOK_SECRET"}
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("DJANGO_", "DB_PASSWORD", "MESSAGING_", "HEALTH_", "LOCK_REDIS_", "BROKER_REDIS_")
        )
    }
    result = subprocess.run(
        [str(Path(sys.executable).parent / argv[0]), *argv[1:]],
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings.production", **env},
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        timeout=60,
    )
    assert result.returncode == 1
    assert ONE_LINE.format("MESSAGING_WEBHOOK_SECRET") in result.stderr
    assert "Traceback" not in result.stderr


def test_production_passes_the_deployment_checks():
    # when
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=REQUIRED)
    # then
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout
