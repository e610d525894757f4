"""Live-update tests: real Socket.IO clients (python-socketio) through NGINX to the live servers.

Churches, staff users and linked numbers are made in the cluster's own database by a
``manage.py shell`` subprocess (idempotent, so the tests can run any number of times); inbound
SMS are signed webhook calls, sent straight to one chosen app server or through NGINX.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
import requests
import socketio

from deploy.local import cluster
from deploy.nginx.render import RATELIMIT_BYPASS_HEADER
from messaging.inbound.webhooks import webhook_headers
from tests.support import WaitTimeout, cluster_env, manage, wait_until

PASSWORD = "live-test-password"
WEBHOOK_SECRET = "local-webhook-secret"
CATCH_UP_AGAIN_SECONDS = 1.0  # the cluster's MESSAGING_WEBHOOK_SECRET default

_ENSURE_CHURCH = """
import json
from messaging.models import PhoneLink
from messaging.contacts.services import staff_member_ensure
staff = staff_member_ensure(church_name={church!r}, username={username!r}, password={password!r})
link, _ = PhoneLink.objects.get_or_create(
    phone={phone!r}, defaults={{"church": staff.church, "state": PhoneLink.State.LINKED}}
)
assert link.church_id == staff.church_id, "the test number is linked to another church"
print(json.dumps({{"church_id": staff.church_id}}))
"""


def manage_shell(cfg: cluster.Settings, code: str) -> str:
    result = manage("shell", "-c", code, env=cluster_env(cfg, server="live-tests"))
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip().splitlines()[-1]


@dataclass(frozen=True)
class Church:
    id: int
    username: str
    phone: str  # the church's linked number: inbound SMS to it belong to this church


@pytest.fixture(scope="session")
def churches(cluster_settings: cluster.Settings) -> dict[str, Church]:
    """Two churches, each with a staff user and a linked number."""
    made = {}
    for key, phone in (("a", "+16465550101"), ("b", "+16465550102")):
        username = f"live-test-{key}"
        code = _ENSURE_CHURCH.format(
            church=f"Live test church {key.upper()}", username=username, password=PASSWORD, phone=phone
        )
        church_id = json.loads(manage_shell(cluster_settings, code))["church_id"]
        made[key] = Church(id=church_id, username=username, phone=phone)
    return made


@pytest.fixture
def session(cluster_settings: cluster.Settings) -> requests.Session:
    """HTTP through NGINX: trusts the cluster's certificate and sends the rate-limit bypass."""
    http = requests.Session()
    http.trust_env = False
    http.verify = str(cluster_settings.state_dir / "nginx" / "tls.crt")
    http.headers[RATELIMIT_BYPASS_HEADER] = cluster_settings.ratelimit_bypass_token()
    return http


@pytest.fixture
def login(session: requests.Session, nginx_url: str) -> Callable[[Church], str]:
    def token_for(church: Church) -> str:
        answer = session.post(
            f"{nginx_url}/auth/login", json={"username": church.username, "password": PASSWORD}, timeout=10
        )
        assert answer.status_code == 200, answer.text
        return str(answer.json()["token"])

    return token_for


def signed_inbound(*, to: str, body: str, sender: str = "+12125550147") -> tuple[bytes, dict[str, str]]:
    payload = json.dumps({"message_id": f"live-{uuid.uuid4().hex}", "from": sender, "to": to, "body": body})
    data = payload.encode()
    return data, {"Content-Type": "application/json", **webhook_headers(body=data, secret=WEBHOOK_SECRET)}


@pytest.fixture
def post_inbound(cluster_settings: cluster.Settings) -> Callable[..., int]:
    """An inbound SMS posted straight to the named app server (not through NGINX); its message id."""

    def post(*, server: str, to: str, body: str) -> int:
        port = cluster_settings.app_ports[cluster_settings.server_names.index(server)]
        data, headers = signed_inbound(to=to, body=body)
        answer = requests.post(f"http://127.0.0.1:{port}/webhooks/sms/inbound", data=data, headers=headers,
                               timeout=10)  # fmt: skip
        assert answer.status_code == 200, answer.text
        return int(answer.json()["message_id"])

    return post


# What python-socketio says when the connection ended without the server's answer to the connect.
NO_ANSWER = "Unexpected connection error"
# The client transport's drops seen here: about 1 connect in 70 (see ``live_client``). A test
# whose connects were retried more often than this fails: the drops would not be the client's.
MOST_RETRIED_SHARE = 0.05


class LiveConnectRetried(UserWarning):
    """A connect the client's own transport dropped before any answer, tried once more."""


class LiveConnectRefused(Exception):
    """A connect that failed, with the reasons the server gave (none if it never answered)."""

    def __init__(self, message: str, reasons: list[object]) -> None:
        super().__init__(f"{message}; reasons given: {reasons!r}")
        self.reasons = reasons


@dataclass
class LiveClient:
    """A Socket.IO client that records its events and, after each reconnect, re-reads the messages
    it may have missed (``GET /api/messages?after=<last id>``), as ADR 0013 tells clients to."""

    client: socketio.Client
    token: str
    nginx_url: str
    http: requests.Session
    events: list[tuple[str, dict[str, object]]] = field(default_factory=list)
    seen_ids: set[int] = field(default_factory=set)
    recovered_ids: set[int] = field(default_factory=set)
    connects: int = 0
    errors: list[Exception] = field(default_factory=list)
    disconnects: list[tuple[float, str]] = field(default_factory=list)
    refusals: list[object] = field(default_factory=list)
    resume_after: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, event: str, data: dict[str, object]) -> None:
        with self.lock:
            self.events.append((event, data))
            self.seen_ids.add(int(data["id"]))  # type: ignore[call-overload]

    def on_connect_error(self, reason: object = None) -> None:
        with self.lock:
            self.refusals.append(reason)

    def on_disconnect(self, reason: object = None) -> None:
        # The resume point is taken when the connection drops: after the reconnect, events may
        # arrive (on their own threads) before the connect handler runs.
        with self.lock:
            self.disconnects.append((time.time(), str(reason)))
            if self.resume_after is None:
                self.resume_after = max(self.seen_ids, default=None)

    def on_connect(self) -> None:
        with self.lock:
            self.connects += 1
            again, last, self.resume_after = self.connects > 1, self.resume_after, None
        if again and last is not None:
            try:
                self.catch_up(after=last)
                # Reads may come from a replica a moment behind the primary (ADR 0013): read again
                # once that moment has surely passed.
                time.sleep(CATCH_UP_AGAIN_SECONDS)
                self.catch_up(after=last)
            except Exception as error:  # the client library would swallow it: keep it for the test
                self.errors.append(error)

    def catch_up(self, *, after: int) -> None:
        url = f"{self.nginx_url}/api/messages"
        while True:
            params: dict[str, str | int] = {"after": after, "limit": 200, "direction": "inbound"}
            auth = {"Authorization": f"Bearer {self.token}"}
            page = self.http.get(url, params=params, headers=auth, timeout=20)
            page.raise_for_status()
            items = page.json()["items"]
            with self.lock:
                self.recovered_ids.update(int(item["id"]) for item in items)
            if not page.json()["next_after"]:
                return
            after = page.json()["next_after"]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Whether ``predicate`` (read under the client's lock) held within ``timeout`` seconds;
        the caller's assert says what was missing."""

        def holds() -> bool:
            with self.lock:
                return predicate()

        try:
            wait_until(holds, timeout=timeout, message="")
        except WaitTimeout:
            return False
        return True

    def whoami(self) -> dict[str, object]:
        return dict(self.client.call("whoami", timeout=10))


@pytest.fixture
def live_client(
    cluster_settings: cluster.Settings, nginx_url: str, session: requests.Session
) -> Iterator[Callable[..., LiveClient]]:
    """Connect clients through NGINX with a bearer token; all are disconnected at the end."""
    made: list[LiveClient] = []
    retried: list[str] = []

    def connect(
        token: str, *, reconnection: bool = True, headers: dict[str, str] | None = None
    ) -> LiveClient:
        try:
            return attempt(token, reconnection=reconnection, headers=headers)
        except LiveConnectRefused as refused:
            if refused.reasons or not refused.args[0].startswith(NO_ANSWER):
                raise  # the server answered: its refusal is the test's to judge
            # The client library's wss transport (websocket-client, reading and writing one TLS
            # socket from two threads) sometimes drops the connection right after the handshake,
            # before the server's answer arrives: about 1 connect in 70 here, while the server
            # logged its answer each time, and none in 600 over plain ws. One more try, not
            # more; each is reported (pytest's warnings summary) and counted below.
            retried.append(str(refused))
            warnings.warn(f"live connect tried again: {refused}", LiveConnectRetried, stacklevel=2)
        return attempt(token, reconnection=reconnection, headers=headers)

    def attempt(token: str, *, reconnection: bool, headers: dict[str, str] | None) -> LiveClient:
        client = socketio.Client(http_session=session, reconnection=reconnection, reconnection_delay=0.5,
                                 reconnection_delay_max=2, request_timeout=10)  # fmt: skip
        live = LiveClient(client=client, token=token, nginx_url=nginx_url, http=session)
        made.append(live)
        for event in ("message.inbound", "message.status", "message.sent"):
            client.on(event, lambda data, event=event: live.record(event, data))
        client.on("connect", live.on_connect)
        client.on("disconnect", live.on_disconnect)
        client.on("connect_error", live.on_connect_error)
        bypass = {RATELIMIT_BYPASS_HEADER: cluster_settings.ratelimit_bypass_token(), **(headers or {})}
        try:
            client.connect(
                nginx_url, auth={"token": token}, transports=["websocket"], wait_timeout=10, headers=bypass
            )
        except socketio.exceptions.ConnectionError as error:
            raise LiveConnectRefused(str(error), live.refusals) from error
        return live

    yield connect
    for live in made:
        live.client.disconnect()
    most = max(1, int(len(made) * MOST_RETRIED_SHARE))
    assert len(retried) <= most, f"{len(retried)} of {len(made)} connects dropped by the client: {retried}"
