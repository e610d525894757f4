"""Clients for the edge tests: as an outside address, without the rate-limit bypass, or as curl.

The whole 127.0.0.0/8 block is loopback, and the local cluster's NGINX counts only 127.0.0.1 as
internal, so a client bound to another 127.x.y.z address is an outside client with its own
rate-limit bucket (a fresh random one per test, so reruns never share a bucket).
"""

import random
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import requests
from requests.adapters import HTTPAdapter

from deploy.local import cluster


def outside_address() -> str:
    return f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


class SourceAddressAdapter(HTTPAdapter):
    """Connect from a chosen local address."""

    def __init__(self, source: str) -> None:
        self.source = source
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kwargs)


@pytest.fixture
def outside_client(cluster_settings: cluster.Settings) -> Callable[[], requests.Session]:
    """Make a session from a fresh outside address, without the rate-limit bypass header."""

    def make() -> requests.Session:
        session = requests.Session()
        session.trust_env = False
        session.verify = str(cluster_settings.state_dir / "nginx" / "tls.crt")
        adapter = SourceAddressAdapter(outside_address())
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    return make


@dataclass
class Burst:
    """What a burst of requests got back: (status, X-Served-By) per request, and how long it took."""

    responses: list[tuple[int, str]]
    seconds: float

    def count(self, status: int) -> int:
        return sum(1 for code, _ in self.responses if code == status)


@pytest.fixture
def burst(nginx_url: str) -> Callable[..., Burst]:
    """Send ``count`` GETs to ``path`` as fast as curl can (a second process, 16 in flight)."""

    def send(path: str, count: int, *, source: str, headers: dict[str, str] | None = None) -> Burst:
        argv = ["curl", "--silent", "--insecure", "--interface", source, "--parallel",
                "--parallel-max", "16", "--output", "/dev/null",
                "--write-out", "%{http_code} %header{x-served-by}\\n"]  # fmt: skip
        for name, value in (headers or {}).items():
            argv += ["--header", f"{name}: {value}"]
        argv.append(f"{nginx_url}{path}[1-{count}]")  # curl's URL globbing: count distinct URLs
        started = time.monotonic()
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        seconds = time.monotonic() - started
        responses = []
        for line in result.stdout.splitlines():
            code, _, served_by = line.partition(" ")
            responses.append((int(code), served_by.strip()))
        assert len(responses) == count, result.stderr[-500:]
        return Burst(responses, seconds)

    return send
