"""/api/openapi.json and /api/docs exist only where MESSAGING_API_DOCS turns them on."""

import os
import subprocess
import sys

import pytest

from tests.support import REPO
from tests.unit.production_env import REQUIRED

pytestmark = pytest.mark.unit

PRODUCTION = {"DJANGO_SETTINGS_MODULE": "config.settings.production", **REQUIRED}
# Resolves the two paths in a fresh process (the API is built once, at import).
SCRIPT = """
import django
django.setup()
from django.urls import Resolver404, resolve
for path in ("/api/openapi.json", "/api/docs"):
    try:
        resolve(path)
        print(path, "served")
    except Resolver404:
        print(path, "absent")
"""


def _resolve(env: dict[str, str]) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "MESSAGING_"))}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env={**clean, **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_production_serves_no_api_schema_or_docs_by_default():
    assert _resolve(PRODUCTION) == "/api/openapi.json absent\n/api/docs absent\n"


def test_production_serves_them_when_the_setting_turns_them_on():
    out = _resolve({**PRODUCTION, "MESSAGING_API_DOCS": "1"})
    assert out == "/api/openapi.json served\n/api/docs served\n"


def test_local_settings_serve_them():
    out = _resolve({"DJANGO_SETTINGS_MODULE": "config.settings.local"})
    assert out == "/api/openapi.json served\n/api/docs served\n"
