"""The variables production settings require, with test values: one list for every test that
starts a process under ``config.settings.production``, so a new required secret is added once."""

import os
import subprocess
import sys

from tests.support import REPO

SECRET_KEY = "x" * 20 + "-production-secret-key-with-enough-entropy-0123456789"

REQUIRED = {
    "DJANGO_SECRET_KEY": SECRET_KEY,
    "DJANGO_ALLOWED_HOSTS": "testserver",
    "DB_PASSWORD": "p",
    "MESSAGING_WEBHOOK_SECRET": "s",
    "HEALTH_DETAILED_TOKEN": "t",
    "HEALTH_TRUSTED_PROXIES": "10.0.0.5/32",
    "BROKER_REDIS_PASSWORD": "broker-pw",
    "LOCK_REDIS_PASSWORD": "lock-pw",
}


def run_under_production(script: str, *args: str, drop: tuple[str, ...], **environ: str) -> str:
    """The last line ``script`` prints, run by ``python -c`` under ``config.settings.production``
    with ``REQUIRED`` and ``environ``; the caller's variables starting with one of ``drop`` are left
    out, so the developer's own environment cannot decide the outcome."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env = {**clean, **REQUIRED, "DJANGO_SETTINGS_MODULE": "config.settings.production", **environ}
    result = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]
