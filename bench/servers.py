"""What the benchmarks talk to: the running local cluster (its processes, its database, a login
through its edge, ``manage.py`` with its settings) and the side servers a benchmark starts for
itself (gunicorns on free ports below 32768, started and stopped by PID)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import requests

from deploy.local import cluster
from deploy.local.cluster import REPO, VENV_BIN
from deploy.local.host import stop_process

PY = str(VENV_BIN / "python")
GUNICORN = str(VENV_BIN / "gunicorn")
GUNICORN_CONF = REPO / "deploy" / "gunicorn" / "gunicorn.conf.py"


# --- the running cluster ---------------------------------------------------------------------------


def cluster_pids() -> list[int]:
    """The recorded PID of every running cluster process (their children are found from them)."""
    return [pid for _name, pid, _port, _var in cluster.status(cluster.Settings()) if pid]


def cluster_dsn(cfg: cluster.Settings, port: int, *, connect_timeout: int) -> str:
    """A libpq connection string for the cluster's database on ``port`` (the primary, PgBouncer)."""
    return (
        f"host=127.0.0.1 port={port} dbname={cfg.db_name} user={cfg.db_user} "
        f"password={cfg.db_password} connect_timeout={connect_timeout}"
    )


def login_token(nginx: str, data: dict[str, object], headers: dict[str, str], verify: str) -> str:
    """A bearer token for ``data``'s username and password, from ``/auth/login`` through NGINX."""
    session = requests.Session()
    session.trust_env = False
    response = session.post(
        f"{nginx}/auth/login",
        json={"username": data["username"], "password": data["password"]},
        headers=headers,
        verify=verify,
        timeout=10,
    )
    response.raise_for_status()
    return str(response.json()["token"])


def manage_shell(cfg: cluster.Settings, code: str, *, timeout: float = 120) -> Any:
    """Runs ``code`` in ``manage.py shell`` on the cluster's settings; the JSON of its last line."""
    result = subprocess.run(
        [PY, "manage.py", "shell", "-c", code],
        cwd=REPO, check=True, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **cfg.app_env(), "DJANGO_SETTINGS_MODULE": "config.settings.local",
             "APP_SERVER_NAME": "bench"},
    )  # fmt: skip
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- side servers ----------------------------------------------------------------------------------


def app_process_env(cfg: cluster.Settings, *, name: str, folder: Path) -> dict[str, str]:
    """The environment of a benchmark's own app process on the running cluster: its settings
    with DEBUG off (production-shaped), its server name, a metrics folder of its own."""
    metrics = folder / f"metrics-{name}"
    metrics.mkdir()
    return {
        **os.environ,
        **cfg.app_env(),
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DJANGO_DEBUG": "0",
        "APP_SERVER_NAME": name,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
    }


def start_gunicorn(
    *, port: int, name: str, app: str, env: dict[str, str], log: Path
) -> subprocess.Popen[bytes]:
    """A gunicorn of ``app`` under the app servers' own config, on 127.0.0.1:``port``."""
    argv = [GUNICORN, "-c", str(GUNICORN_CONF), "--bind", f"127.0.0.1:{port}", "--name", name, app]
    output = log.open("ab")
    return subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT, cwd=REPO, env=env)


def stop_side_servers(processes: list[subprocess.Popen[bytes]], *, timeout: float) -> None:
    """Stops gunicorns and the NGINX started after them (the last one), newest first: NGINX
    with SIGQUIT (it finishes what it holds), the gunicorns with SIGTERM."""
    for process in reversed(processes):
        stop_process(process, signal.SIGQUIT if process is processes[-1] else signal.SIGTERM, timeout=timeout)


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cluster.port_open(port):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port} after {timeout:.0f}s")


def wait_http(port: int, path: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code < 500:
                return
        time.sleep(0.2)
    raise RuntimeError(f"nothing answered {path} on {port} within {timeout:.0f}s")
