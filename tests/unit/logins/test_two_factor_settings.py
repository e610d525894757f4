"""The admin's second factor: the production settings force it on whatever the environment says,
and ``check --deploy`` warns about a deployment without it."""

import os

import pytest

from tests.support import manage
from tests.unit.production_env import REQUIRED

pytestmark = pytest.mark.unit

SHOW = "from django.conf import settings; print(settings.ADMIN_TWO_FACTOR, settings.SESSION_COOKIE_AGE)"


def _env(settings_module: str, **extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ADMIN_"))}
    return {**clean, "DJANGO_SETTINGS_MODULE": settings_module, **extra}


def test_production_forces_the_second_factor_and_keeps_admin_sessions_short():
    result = manage(
        "shell",
        "-v",
        "0",
        "-c",
        SHOW,
        env=_env("config.settings.production", **REQUIRED, ADMIN_TWO_FACTOR="0"),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", str(8 * 3600)]


def test_the_deployment_check_warns_when_the_admin_takes_a_password_alone():
    result = manage("check", "--deploy", env=_env("config.settings.local", ADMIN_TWO_FACTOR="0"))
    assert "logins.W001" in result.stderr + result.stdout
    turned_on = manage("check", "--deploy", env=_env("config.settings.local", ADMIN_TWO_FACTOR="1"))
    assert "logins.W001" not in turned_on.stderr + turned_on.stdout
