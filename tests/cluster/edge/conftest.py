"""Clients for the edge tests: as an outside address, without the rate-limit bypass, or as curl.

The edge pair counts only the host's end of its bridge as internal (ADR 0020), so a client bound
to another address added on the bridge is an outside client with its own rate-limit bucket (a
random one per test, so reruns seldom share a bucket).
"""

import itertools
import json
import random
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from requests.adapters import HTTPAdapter

from deploy.local import cluster


def outside_address() -> str:
    cfg = cluster.Settings()
    address = cluster.EdgeNetwork.of(cfg).outside_client(random.randrange(100))
    return cluster.add_client_address(cfg, address)


class SourceAddressAdapter(HTTPAdapter):
    """Connect from a chosen local address."""

    def __init__(self, source: str) -> None:
        self.source = source
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kwargs)


@pytest.fixture
def outside_client(cluster_settings: cluster.Settings) -> Callable[..., requests.Session]:
    """Make a session from an outside address (fresh unless given), without the bypass header."""

    def make(source: str | None = None) -> requests.Session:
        session = requests.Session()
        session.trust_env = False
        session.verify = str(cluster_settings.state_dir / "nginx" / "tls.crt")
        adapter = SourceAddressAdapter(source or outside_address())
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    return make


MARK = "\n<<reply>> "  # starts each reply in curl's output; a leading "@" would name a file


@dataclass
class Reply:
    status: int
    headers: dict[str, str]  # lower-case names, the last value of each
    body_file: Path

    @property
    def served_by(self) -> str:
        return self.headers.get("x-served-by", "")


@dataclass
class Burst:
    """What a burst of requests got back, in the order they were sent, and how long it took."""

    replies: list[Reply]
    seconds: float

    def count(self, status: int) -> int:
        return sum(1 for reply in self.replies if reply.status == status)


@pytest.fixture
def burst(nginx_url: str, tmp_path: Path) -> Callable[..., Burst]:
    """Send ``count`` GETs to ``path`` from a second process (curl), up to 300 in flight at once.

    So many in flight means the first few hundred arrive together, faster than any zone's rate,
    however slowly a busy machine answers the ones that are let through.
    """
    bursts = itertools.count()

    def send(path: str, count: int, *, source: str, headers: dict[str, str] | None = None) -> Burst:
        folder = tmp_path / f"burst-{next(bursts)}"
        folder.mkdir()
        argv = ["curl", "--silent", "--insecure", "--interface", source, "--parallel",
                "--parallel-max", "300", "--output", f"{folder}/#1",
                "--write-out", f"{MARK}%{{url}} %{{http_code}} %{{header_json}}"]  # fmt: skip
        for name, value in (headers or {}).items():
            argv += ["--header", f"{name}: {value}"]
        # curl's URL globbing: count requests, told apart by a query string the app ignores
        argv.append(f"{nginx_url}{path}?n=[1-{count}]")
        started = time.monotonic()
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        seconds = time.monotonic() - started
        replies: dict[int, Reply] = {}
        for record in result.stdout.split(MARK)[1:]:
            url, status, header_json = record.split(" ", 2)
            number = int(url.rsplit("?n=", 1)[1])
            fields = {name: values[-1] for name, values in json.loads(header_json).items()}
            replies[number] = Reply(int(status), fields, folder / str(number))
        assert sorted(replies) == list(range(1, count + 1)), result.stderr[-500:]
        return Burst([replies[number] for number in sorted(replies)], seconds)

    return send
