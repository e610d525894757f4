"""The Twilio-style adapter against a small local HTTP server that plays the provider."""

import http.server
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import pytest

from deploy.local.host import free_port
from messaging.gateway import GatewayError, HttpSmsGateway, OutboundSms
from messaging.models import Message
from messaging.sending import services
from tests.integration.messaging.factories import MessageFactory

pytestmark = pytest.mark.integration

SMS = OutboundSms(to="+12025550123", from_number="+15005550006", body="Hello")


@dataclass
class FakeProvider:
    """Answers each POST with the next planned reply: a status code, or "hang" (no answer in time)."""

    plan: list[int | str] = field(default_factory=list)
    requests: list[dict[str, object]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    state = FakeProvider()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            form = parse_qs(self.rfile.read(length).decode())
            state.requests.append(
                {
                    "path": self.path,
                    "form": form,
                    "auth": self.headers.get("Authorization"),
                    "idempotency_key": self.headers.get("Idempotency-Key"),
                }
            )
            reply = state.plan.pop(0) if state.plan else 201
            if reply == "hang":
                time.sleep(0.6)  # longer than the client's read timeout
                return
            self.send_response(int(reply))
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            answer = {"sid": f"SM{len(state.requests)}"} if int(reply) < 400 else {"message": "boom"}
            self.wfile.write(json.dumps(answer).encode())

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def _gateway(provider: FakeProvider, **overrides: object) -> HttpSmsGateway:
    options: dict[str, object] = {
        "base_url": provider.url,
        "account_sid": "AC123",
        "auth_token": "token",
        "connect_timeout": 0.5,
        "read_timeout": 0.3,
        "max_attempts": 3,
        "backoff_seconds": 0.01,
        **overrides,
    }
    return HttpSmsGateway(**options)  # type: ignore[arg-type]


def test_a_message_accepted_by_the_provider_returns_its_id(provider):
    # when
    sid = _gateway(provider).send(SMS)
    # then
    assert sid == "SM1"
    [request] = provider.requests
    assert request["path"] == "/2010-04-01/Accounts/AC123/Messages.json"
    assert request["form"] == {"To": ["+12025550123"], "From": ["+15005550006"], "Body": ["Hello"]}
    assert str(request["auth"]).startswith("Basic ")


def test_a_500_is_retried_and_the_next_success_counts(provider):
    # given
    provider.plan = [500, 201]
    # when
    sid = _gateway(provider).send(SMS)
    # then
    assert sid == "SM2"
    assert len(provider.requests) == 2


def test_a_provider_that_never_answers_in_time_fails_after_the_bounded_retries(provider):
    # given
    provider.plan = ["hang", "hang", "hang", 201]
    # when
    with pytest.raises(GatewayError, match="3 attempts"):
        _gateway(provider).send(SMS)
    # then: three tries, never the fourth
    assert len(provider.requests) == 3


def test_every_try_carries_the_messages_idempotency_key_when_the_provider_takes_one(provider):
    # given a provider that deduplicates on a header, failing once
    provider.plan = [500, 201]
    gateway = _gateway(provider, idempotency_header="Idempotency-Key")
    # when
    gateway.send(
        OutboundSms(to=SMS.to, from_number=SMS.from_number, body=SMS.body, idempotency_key="message-7")
    )
    # then both tries carried the same key, and the gateway says a repeat is safe
    assert [request["idempotency_key"] for request in provider.requests] == ["message-7", "message-7"]
    assert gateway.supports_idempotency_key
    assert not _gateway(provider).supports_idempotency_key


def test_a_4xx_is_final_and_not_retried(provider):
    provider.plan = [400, 201]
    with pytest.raises(GatewayError, match="HTTP 400"):
        _gateway(provider).send(SMS)
    assert len(provider.requests) == 1


def test_a_refused_connection_fails_after_the_bounded_retries():
    gateway = HttpSmsGateway(
        base_url=f"http://127.0.0.1:{free_port()}", account_sid="AC1", auth_token="t",
        connect_timeout=0.2, read_timeout=0.2, max_attempts=2, backoff_seconds=0.01,
    )  # fmt: skip
    with pytest.raises(GatewayError, match="2 attempts"):
        gateway.send(SMS)


def test_delivering_through_the_provider_marks_the_message_sent(provider, church):
    # given
    message = MessageFactory.create(church=church)
    # when
    services.message_deliver(message_id=message.id, gateway=_gateway(provider))
    # then
    message.refresh_from_db()
    assert (message.status, message.provider_message_id, message.error) == ("sent", "SM1", "")
    assert message.sent_at is not None


def test_a_provider_timeout_leaves_the_message_failed_with_the_error(provider, church):
    # given
    provider.plan = ["hang", "hang"]
    message = MessageFactory.create(church=church)
    # when
    services.message_deliver(message_id=message.id, gateway=_gateway(provider, max_attempts=2))
    # then
    message.refresh_from_db()
    assert message.status == Message.Status.FAILED
    assert "2 attempts" in message.error
    assert "Timeout" in message.error
