"""Helpers for the health cluster tests: timed probes, and extra gunicorn servers of our own."""

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from deploy.local import cluster
from tests.support import REPO, free_port, stop_process, wait_until

# Ports for the extra servers: below the kernel's ephemeral range and clear of the cluster's.
SIDE_PORTS = range(29400, 29500)


@dataclass
class Probe:
    status_code: int
    body: dict
    seconds: float


def probe(url: str, **kwargs) -> Probe:
    """One GET with a generous client timeout: the server must answer well within it."""
    started = time.monotonic()
    response = requests.get(url, timeout=10, **kwargs)
    body = response.json() if "json" in response.headers.get("Content-Type", "") else {}
    return Probe(response.status_code, body, time.monotonic() - started)


def first_probe_with(url: str, predicate: Callable[[Probe], bool], *, within: float, **kwargs) -> Probe:
    """Poll ``url`` until ``predicate`` holds; fail if that takes longer than ``within`` seconds."""
    answers: list[Probe] = []

    def expected() -> Probe | None:
        answers.append(probe(url, **kwargs))
        return answers[-1] if predicate(answers[-1]) else None

    return wait_until(
        expected,
        timeout=within,
        interval=0.1,
        ignoring=(requests.ConnectionError,),  # a server being restarted (by another test)
        message=lambda: f"{url} did not answer as expected; last answer: {answers[-1:]}",
    )


def check(body: dict, key: str, component_id: str | None = None) -> dict:
    entries = body["checks"][key]
    return next(
        entry for entry in entries if component_id is None or entry.get("componentId") == component_id
    )


@pytest.fixture
def app_url(cluster_settings: cluster.Settings) -> str:
    return f"http://127.0.0.1:{cluster_settings.app_ports[0]}"


@pytest.fixture
def healthy_cluster(app_url: str) -> None:
    """The cluster must be healthy before a fault test, or the 503 it expects proves nothing."""
    first_probe_with(f"{app_url}/health/ready", lambda p: p.body.get("status") == "pass", within=30)


def wait_until_healthy_again(app_url: str) -> None:
    """After restoring a dependency: PgBouncer and the replica reconnect by themselves."""
    first_probe_with(f"{app_url}/health/ready", lambda p: p.body.get("status") == "pass", within=60)
    first_probe_with(
        f"{app_url}/health/detailed",
        lambda p: (
            check(p.body, "database:replicationLag", "replica")["status"] == "pass"
            and check(p.body, "lock-redis:quorum")["observedValue"] == 3
        ),
        within=60,
    )


@dataclass
class SideServer:
    url: str
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        stop_process(self.process, signal.SIGINT, timeout=15, session=True)  # SIGINT: stop now, no drain


@pytest.fixture
def side_server(cluster_settings: cluster.Settings, tmp_path: Path) -> Iterator[Callable[..., SideServer]]:
    """Start extra gunicorn servers with the cluster's config, on ports of our own."""
    started: list[SideServer] = []

    def start(**env: str) -> SideServer:
        port = free_port(SIDE_PORTS)
        log = tmp_path / f"gunicorn-{port}.log"
        full_env = {
            **os.environ,
            **cluster_settings.app_env(),
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "APP_SERVER_NAME": f"health-side-{port}",
            "GUNICORN_WORKERS": "2",
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        full_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        with log.open("ab") as handle:
            process = subprocess.Popen(
                [
                    str(REPO / ".venv" / "bin" / "gunicorn"),
                    "-c",
                    str(REPO / "deploy" / "gunicorn" / "gunicorn.conf.py"),
                    "--bind",
                    f"127.0.0.1:{port}",
                    "config.wsgi",
                ],
                cwd=REPO,
                env=full_env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = SideServer(f"http://127.0.0.1:{port}", process, log)
        started.append(server)

        def answers() -> bool:
            assert process.poll() is None, log.read_text()
            return requests.get(f"{server.url}/health", timeout=10).status_code == 200

        wait_until(
            answers,
            timeout=30,
            interval=0.2,
            ignoring=(requests.ConnectionError, requests.Timeout),
            message=lambda: f"the extra gunicorn did not start: {log.read_text()[-2000:]}",
        )
        return server

    yield start
    for server in started:
        server.stop()
