"""``/health`` answered in front of Django (health/wsgi.py), as Django would; the rest by Django."""

import io
import json
import sys
from collections.abc import Iterator

import pytest
from django.test import Client

from config.databases import PRIMARY_DB_ALIAS
from config.wsgi import application
from health import drain

pytestmark = [pytest.mark.integration, pytest.mark.django_db(databases=[PRIMARY_DB_ALIAS, "replica"])]


def _call(path: str, method: str = "GET", **extra: str) -> tuple[str, dict[str, str], bytes]:
    environ = {
        **extra,
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "10.42.7.19",
        "SERVER_PORT": "8000",
        "HTTP_HOST": "10.42.7.19",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
    }
    answer: dict[str, object] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> None:
        answer.update(status=status, headers=dict(headers))

    body = b"".join(application(environ, start_response))
    return str(answer["status"]), dict(answer["headers"]), body  # type: ignore[call-overload]


def _without_times(body: bytes) -> dict:
    report = json.loads(body)
    for results in report.get("checks", {}).values():
        for result in results:
            result.pop("time", None)
    return report


@pytest.fixture
def draining() -> Iterator[None]:
    drain.start_draining()
    yield
    drain.stop_draining()


@pytest.mark.parametrize("state", ["serving", "draining"])
def test_the_fast_answer_is_djangos_answer(state: str, request: pytest.FixtureRequest) -> None:
    # given
    if state == "draining":
        request.getfixturevalue("draining")
    # when
    status, headers, body = _call("/health")
    django = Client().get("/health", HTTP_HOST="10.42.7.19")
    # then: the same status, body and headers
    expected = 503 if state == "draining" else 200
    assert int(status.split()[0]) == django.status_code == expected
    assert _without_times(body) == _without_times(django.content)
    for header in ("Content-Type", "Cache-Control", "X-Served-By"):
        assert headers[header] == django[header], header
    assert int(headers["Content-Length"]) == len(body)


def test_head_has_no_body_and_other_methods_and_paths_reach_django() -> None:
    # when
    head = _call("/health", "HEAD")
    post = _call("/health", "POST")
    live = _call("/health/live")
    # then
    assert head[0].startswith("200") and head[2] == b"" and int(head[1]["Content-Length"]) > 0
    assert post[0].startswith("405")  # Django's answer, as before
    assert live[1]["Content-Type"] == "application/health+json"
    assert json.loads(live[2])["description"] == "live"
    assert "Content-Length" not in live[1]  # Django's response (the fast path always sets one)


@pytest.mark.parametrize(
    "sent", ["edge-3f2a9c0d41", "has spaces", "\u0661" * 10], ids=["kept", "spaces", "non-ascii"]
)
def test_the_fast_answer_keeps_or_replaces_the_request_id_as_django_does(sent: str) -> None:
    # when
    _, headers, _ = _call("/health", HTTP_X_REQUEST_ID=sent)
    django = Client().get("/health", HTTP_HOST="10.42.7.19", HTTP_X_REQUEST_ID=sent)
    # then: an acceptable id comes back as it was sent; anything else is replaced by a new one
    if sent == "edge-3f2a9c0d41":
        assert headers["X-Request-ID"] == django["X-Request-ID"] == sent
    else:
        assert headers["X-Request-ID"] != sent and django["X-Request-ID"] != sent
        assert len(headers["X-Request-ID"]) == len(django["X-Request-ID"]) == 32
