"""A steady API load through the cluster's edge: paced reads (``GET /api/messages``) and writes
(``POST /api/messages``), every answer kept with its send and answer times.

The fault tests (tests/cluster/ha/) and the availability run (``bench.availability``) both put
it on the cluster while they kill a component, and read from its answers what failed, for how
long, and which writes were acknowledged (a 201 with the message's id).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field

import requests

from deploy.local import cluster
from deploy.nginx.render import RATELIMIT_BYPASS_HEADER

PASSWORD = "ha-test-password"  # noqa: S105 (the load's own users on the local cluster)
CHURCH = "HA test church"
READ = "read"
WRITE = "write"


def edge_url(cfg: cluster.Settings) -> str:
    """Where clients reach the cluster: ``EDGE_URL`` from ``.cluster/cluster.env`` when the cluster
    writes one (the edge pair's virtual address), else NGINX's HTTPS port on loopback."""
    env_file = cfg.state_dir / "cluster.env"
    if env_file.exists():
        for line in env_file.read_text().splitlines():
            key, _, value = line.partition("=")
            if key == "EDGE_URL" and value:
                return value.rstrip("/")
    return f"https://127.0.0.1:{cfg.nginx_https_port}"


def edge_certificate(cfg: cluster.Settings) -> str:
    return str(cfg.state_dir / "nginx" / "tls.crt")


@dataclass
class Answer:
    kind: str  # READ or WRITE
    sent: float  # time.monotonic()
    done: float
    status: int  # -1: no HTTP answer at all
    message_id: int | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class ApiLoad:
    """Paced reads (``GET /api/messages``) and writes (``POST /api/messages``) through the edge.

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
        session = self._session(self.writer_token if kind == WRITE else self.reader_token)
        next_at = time.monotonic() + offset
        while not self._stop.is_set():
            time.sleep(max(0.0, next_at - time.monotonic()))
            next_at += interval
            sent = time.monotonic()
            try:
                if kind == WRITE:
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
            if kind == WRITE and response.status_code == 201:
                message_id = response.json()["messages"][0]["id"]
            detail = "" if response.ok else response.text[:200]
            self._record(Answer(kind, sent, time.monotonic(), response.status_code, message_id, detail))

    def _record(self, answer: Answer) -> None:
        with self._lock:
            self.answers.append(answer)

    def start(self, threads_per_kind: int = 4) -> None:
        for kind, rate in ((WRITE, self.writes_per_second), (READ, self.reads_per_second)):
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
        return [a for a in self.of(kind) if not a.ok]

    def unavailable_for(self, kind: str, since: float, until: float = float("inf")) -> float:
        """Seconds from ``since`` until the last failed request of ``kind`` answered before
        ``until`` had its answer (0: none failed)."""
        failed = [a.done for a in self.failed(kind) if since <= a.done < until]
        return max(failed) - since if failed else 0.0

    def back_after(self, kind: str, since: float) -> float:
        """Seconds from ``since`` until the first request of ``kind`` sent after it succeeded (a
        request held up by the fault counts until its answer came)."""
        done = [a.done for a in self.of(kind) if a.sent >= since and a.ok]
        assert done, f"no {kind} sent after the fault succeeded"
        return min(done) - since

    def slowest(self, kind: str, since: float) -> float:
        return max((a.done - a.sent for a in self.of(kind) if a.done >= since), default=0.0)

    def acknowledged_writes(self) -> list[int]:
        return [a.message_id for a in self.of(WRITE) if a.message_id is not None]


def ensure_user(cfg: cluster.Settings, username: str) -> None:
    subprocess.run(
        [str(cluster.VENV_BIN / "python"), "manage.py", "ensure_demo_user", "--username", username,
         "--password", PASSWORD, "--church", CHURCH],
        cwd=cluster.REPO, check=True, capture_output=True, timeout=60,
        env={**os.environ, **cfg.app_env(), "DJANGO_SETTINGS_MODULE": "config.settings.local"},
    )  # fmt: skip


def login(session: requests.Session, base: str, username: str) -> str:
    answer = session.post(f"{base}/auth/login", json={"username": username, "password": PASSWORD}, timeout=20)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["token"])


def prepared_load(
    cfg: cluster.Settings, *, writes_per_second: float = 5.0, reads_per_second: float = 10.0
) -> ApiLoad:
    """A load (not started) for the writer and reader users, writing to a contact of its own."""
    base, cert = edge_url(cfg), edge_certificate(cfg)
    session = requests.Session()
    session.trust_env = False
    session.verify = cert
    bypass = cfg.ratelimit_bypass_token()
    session.headers[RATELIMIT_BYPASS_HEADER] = bypass
    for name in ("ha-test-writer", "ha-test-reader"):
        ensure_user(cfg, name)
    writer = login(session, base, "ha-test-writer")
    reader = login(session, base, "ha-test-reader")
    session.headers["Authorization"] = f"Bearer {writer}"
    for _ in range(5):  # a random number may exist from an earlier run
        phone = f"+1213{secrets.randbelow(7_000_000) + 2_000_000:07d}"
        contact = session.post(f"{base}/api/contacts", json={"phone": phone, "name": "HA"}, timeout=20)
        if contact.status_code != 409:
            break
    assert contact.status_code == 201, contact.text
    return ApiLoad(
        base=base, cert=cert, bypass=bypass, writer_token=writer, reader_token=reader,
        contact_id=contact.json()["id"], writes_per_second=writes_per_second,
        reads_per_second=reads_per_second,
    )  # fmt: skip
