"""PostgreSQL and etcd fault tests: verified redundancy, a steady API load through NGINX, and
what failed while a component was down (ADR 0017)."""

from __future__ import annotations

import fcntl
import os
import secrets
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
import requests

from deploy.local import cluster
from deploy.local.cluster import patroni
from deploy.nginx.render import RATELIMIT_BYPASS_HEADER
from tests.cluster.db import connect

PASSWORD = "ha-test-password"
CHURCH = "HA test church"


@dataclass
class Answer:
    kind: str  # "read" or "write"
    sent: float  # time.monotonic()
    done: float
    status: int  # -1: no HTTP answer at all
    message_id: int | None = None
    detail: str = ""


@dataclass
class ApiLoad:
    """Paced reads (``GET /api/messages``) and writes (``POST /api/messages``) through NGINX.

    Each kind runs on a few threads so that a request held up by a failover does not stop the
    others from being sent on time. Reads and writes use two users: a user's own recent write
    would send its reads to the primary (read-your-writes), and the reads are to show what the
    replicas serve.
    """

    base: str
    cert: str
    bypass: str
    writer_token: str
    reader_token: str
    contact_id: int
    writes_per_second: float = 5.0
    reads_per_second: float = 10.0
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _session(self, token: str) -> requests.Session:
        session = requests.Session()
        session.trust_env = False
        session.verify = self.cert
        session.headers[RATELIMIT_BYPASS_HEADER] = self.bypass
        session.headers["Authorization"] = f"Bearer {token}"
        return session

    def _loop(self, kind: str, interval: float, offset: float) -> None:
        session = self._session(self.writer_token if kind == "write" else self.reader_token)
        next_at = time.monotonic() + offset
        while not self._stop.is_set():
            time.sleep(max(0.0, next_at - time.monotonic()))
            next_at += interval
            sent = time.monotonic()
            try:
                if kind == "write":
                    response = session.post(
                        f"{self.base}/api/messages",
                        json={"contact_id": self.contact_id, "body": "ha fault test"},
                        headers={"Idempotency-Key": uuid.uuid4().hex},
                        timeout=20,
                    )
                else:
                    response = session.get(f"{self.base}/api/messages", params={"limit": 5}, timeout=20)
            except requests.RequestException as error:
                self._record(Answer(kind, sent, time.monotonic(), -1, detail=repr(error)[:200]))
                continue
            message_id = None
            if kind == "write" and response.status_code == 201:
                message_id = response.json()["messages"][0]["id"]
            detail = "" if response.ok else response.text[:200]
            self._record(Answer(kind, sent, time.monotonic(), response.status_code, message_id, detail))

    def _record(self, answer: Answer) -> None:
        with self._lock:
            self.answers.append(answer)

    def start(self, threads_per_kind: int = 4) -> None:
        for kind, rate in (("write", self.writes_per_second), ("read", self.reads_per_second)):
            interval = threads_per_kind / rate
            for index in range(threads_per_kind):
                thread = threading.Thread(
                    target=self._loop, args=(kind, interval, index * interval / threads_per_kind), daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def of(self, kind: str) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if a.kind == kind]

    def failed(self, kind: str) -> list[Answer]:
        return [a for a in self.of(kind) if not 200 <= a.status < 300]

    def unavailable_for(self, kind: str, since: float) -> float:
        """Seconds from ``since`` until the last failed request of ``kind`` had its answer (0: none)."""
        failed = [a.done for a in self.failed(kind) if a.done >= since]
        return max(failed) - since if failed else 0.0

    def back_after(self, kind: str, since: float) -> float:
        """Seconds from ``since`` until the first request of ``kind`` sent after it succeeded (a
        request held up by the fault counts until its answer came)."""
        done = [a.done for a in self.of(kind) if a.sent >= since and 200 <= a.status < 300]
        assert done, f"no {kind} sent after the fault succeeded"
        return min(done) - since

    def slowest(self, kind: str, since: float) -> float:
        return max((a.done - a.sent for a in self.of(kind) if a.done >= since), default=0.0)

    def acknowledged_writes(self) -> list[int]:
        return [a.message_id for a in self.of("write") if a.message_id is not None]


def _ensure_user(cfg: cluster.Settings, username: str) -> None:
    subprocess.run(
        [str(cluster.VENV_BIN / "python"), "manage.py", "ensure_demo_user", "--username", username,
         "--password", PASSWORD, "--church", CHURCH],
        cwd=cluster.REPO, check=True, capture_output=True, timeout=60,
        env={**os.environ, **cfg.app_env(), "DJANGO_SETTINGS_MODULE": "config.settings.local"},
    )  # fmt: skip


def _login(session: requests.Session, base: str, username: str) -> str:
    answer = session.post(f"{base}/auth/login", json={"username": username, "password": PASSWORD}, timeout=20)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["token"])


@pytest.fixture
def api_load(
    cluster_settings: cluster.Settings, nginx_url: str, http: requests.Session
) -> Iterator[Callable[..., ApiLoad]]:
    """Start the steady load (stopped after the test)."""
    started: list[ApiLoad] = []

    def start(writes_per_second: float = 5.0, reads_per_second: float = 10.0) -> ApiLoad:
        for name in ("ha-test-writer", "ha-test-reader"):
            _ensure_user(cluster_settings, name)
        writer = _login(http, nginx_url, "ha-test-writer")
        reader = _login(http, nginx_url, "ha-test-reader")
        http.headers["Authorization"] = f"Bearer {writer}"
        for _ in range(5):  # a random number may exist from an earlier run
            phone = f"+1213{secrets.randbelow(7_000_000) + 2_000_000:07d}"
            contact = http.post(f"{nginx_url}/api/contacts", json={"phone": phone, "name": "HA"}, timeout=20)
            if contact.status_code != 409:
                break
        assert contact.status_code == 201, contact.text
        bypass = cluster_settings.ratelimit_bypass_token()
        load = ApiLoad(base=nginx_url, cert=str(http.verify), bypass=bypass, writer_token=writer,
                       reader_token=reader, contact_id=contact.json()["id"],
                       writes_per_second=writes_per_second, reads_per_second=reads_per_second)  # fmt: skip
        load.start()
        started.append(load)
        return load

    yield start
    for load in started:
        load.stop()


def messages_missing(cfg: cluster.Settings, ids: list[int]) -> list[int]:
    """Which of these message ids the database (the current leader) does not have."""
    with connect(cfg, cfg.pg_primary_port) as conn:
        found = {row[0] for row in conn.execute("SELECT id FROM messaging_message WHERE id = ANY(%s)", [ids])}
    return sorted(set(ids) - found)


@pytest.fixture
def exclusive_database(cluster_settings: cluster.Settings) -> Iterator[None]:
    """One database fault at a time on a cluster (parallel test sessions)."""
    with (cluster_settings.state_dir / "database-fault.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def full_redundancy(cfg: cluster.Settings, timeout: float = 60.0) -> dict[str, str]:
    """Wait until every etcd member is healthy, one member leads and the other streams from it;
    return the roles by member name."""
    deadline = time.monotonic() + timeout
    while True:
        roles = patroni.roles(cfg)
        etcd_ok = all(patroni.etcd_healthy(endpoint) for endpoint in cfg.etcd_endpoints())
        replicas = [name for name, role in roles.items() if role == patroni.REPLICA]
        if (
            etcd_ok
            and sorted(roles.values(), key=str) == [patroni.LEADER, patroni.REPLICA]
            and all(patroni._streaming(cfg, name) for name in replicas)
        ):
            return {name: str(role) for name, role in roles.items()}
        assert time.monotonic() < deadline, (
            f"no full redundancy after {timeout:.0f} s: {roles}, etcd ok={etcd_ok}"
        )
        time.sleep(0.5)


def kill_member(cfg: cluster.Settings, name: str) -> None:
    """SIGKILL the whole member: its Patroni and its postmaster (Patroni runs it in another session)."""
    service = cluster.services(cfg)[name]
    patroni_pid = cluster.recorded_pid(service, cfg)
    postmaster = patroni.postmaster_pid(cfg, name)
    assert patroni_pid and postmaster, f"{name}: patroni {patroni_pid}, postmaster {postmaster}"
    os.kill(patroni_pid, signal.SIGKILL)
    os.kill(postmaster, signal.SIGKILL)


def log_size(cfg: cluster.Settings, name: str) -> int:
    path = cfg.log_dir / f"{name}.log"
    return path.stat().st_size if path.exists() else 0


def log_since(cfg: cluster.Settings, name: str, offset: int) -> str:
    with (cfg.log_dir / f"{name}.log").open("rb") as handle:
        handle.seek(offset)
        return handle.read().decode(errors="replace")
