"""Helpers for the observability cluster tests: reading /metrics and the cluster's logs."""

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from deploy.local import cluster
from tests.support import wait_until


def scrape(port: int) -> str:
    response = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    response.raise_for_status()
    return response.text


def sample_value(text: str, name: str, labels: dict[str, str]) -> float:
    """One sample's value in an exposition, 0 when it is not there yet."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def json_lines_with(path: Path, needle: str) -> list[dict]:
    lines = path.read_text(errors="replace").splitlines()
    return [json.loads(line) for line in lines if needle in line and line.startswith("{")]


@pytest.fixture
def wait_for_log_lines() -> Callable[[Path, str, int], list[dict]]:
    """Poll a log until ``count`` JSON lines mention ``needle`` (logs are written as served)."""

    def wait(path: Path, needle: str, count: int = 1) -> list[dict]:
        def enough() -> list[dict] | None:
            found = json_lines_with(path, needle)
            return found if len(found) >= count else None

        return wait_until(
            enough,
            timeout=10,
            interval=0.2,
            message=f"fewer than {count} JSON lines of {path.name} mention {needle}",
        )

    return wait


@dataclass(frozen=True)
class AppServer:
    name: str
    port: int
    log: Path


@pytest.fixture
def app_server(cluster_settings: cluster.Settings) -> AppServer:
    """A running app server. Other suites stop and restart servers in their fault tests, so
    the first one found running (waiting a little for one) is used, not always app1."""
    table = cluster.services(cluster_settings)

    def running() -> AppServer | None:
        for name, port in zip(cluster_settings.server_names, cluster_settings.app_ports, strict=True):
            if cluster.recorded_pid(table[name], cluster_settings) and cluster.port_open(port):
                return AppServer(name, port, cluster_settings.log_dir / f"{name}.log")
        return None

    return wait_until(running, timeout=30, interval=0.5, message="no app server is running")
