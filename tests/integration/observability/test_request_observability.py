"""The request middleware: one JSON log line per request with its id, user and church; the HTTP
counter; and /metrics only for internal clients."""

import io
import json
import logging
from typing import Any

import pytest
from django.test import Client

from config import metrics
from config.logging import ContextFilter, logging_config, request_id_var
from messaging.contacts.services import staff_member_ensure
from messaging.tokens.services import api_token_create

pytestmark = pytest.mark.integration


def _request_lines(caplog) -> list[Any]:  # records with the extra fields
    return [record for record in caplog.records if record.name == "app.request"]


@pytest.fixture
def client() -> Client:
    return Client(HTTP_HOST="localhost")


@pytest.mark.django_db
def test_an_api_request_logs_its_id_user_church_status_and_duration(client, caplog):
    # given a church staff member with an API token
    staff = staff_member_ensure(church_name="Observed church", username="observer", password="x" * 16)
    token = api_token_create(user=staff.user)
    # when they list their messages with a request id from NGINX
    with caplog.at_level(logging.INFO, logger="app.request"):
        response = client.get(
            "/api/messages", HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_X_REQUEST_ID="req-from-nginx-0001"
        )
    # then one line describes the request, with who asked and for which church
    (line,) = _request_lines(caplog)
    assert response.status_code == 200
    assert response["X-Request-ID"] == "req-from-nginx-0001"
    assert line.request_id == "req-from-nginx-0001"
    assert (line.method, line.path, line.status) == ("GET", "/api/messages", 200)
    assert line.view == "messaging-api:messages_list"
    assert (line.user_id, line.church_id) == (staff.user_id, staff.church_id)
    assert line.duration_ms > 0


def test_a_malformed_request_id_is_replaced(client, caplog):
    # given a request id with characters that do not belong in a log
    with caplog.at_level(logging.INFO, logger="app.request"):
        response = client.get("/no-such-page", HTTP_X_REQUEST_ID='bad id"}\n{"forged": 1')
    # then the server makes its own id and logs that one
    (line,) = _request_lines(caplog)
    assert line.request_id == response["X-Request-ID"]
    assert len(line.request_id) == 32 and line.request_id.isalnum()
    assert (line.view, line.status) == ("<unresolved>", 404)


def test_requests_move_the_http_counter_with_bounded_labels(client):
    # given the counter for unresolved requests with an invented method
    labels = {"method": "other", "view": "<unresolved>", "status": "404"}
    before = metrics.http_requests.labels(**labels)._value.get()
    # when a client invents a method on an unknown path
    client.generic("BREW", "/coffee-pot")
    # then it is counted under "other", not under its own new label value
    assert metrics.http_requests.labels(**labels)._value.get() == before + 1


def test_metrics_answer_internal_clients_and_hide_from_others(client):
    # given a scraper on the loopback network and a client on the internet
    internal = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    private = client.get("/metrics", REMOTE_ADDR="10.1.2.3")
    outside = client.get("/metrics", REMOTE_ADDR="203.0.113.7")
    # then the internal ones read the exposition and the outsider gets a plain 404
    assert internal.status_code == private.status_code == 200
    assert internal["Content-Type"].startswith("text/plain")
    assert b"app_http_requests_total" in internal.content
    assert outside.status_code == 404
    assert b"app_http_requests_total" not in outside.content


def test_log_lines_are_json_with_the_server_and_the_request_id():
    # given the project's JSON formatter and context filter on a handler writing to memory
    spec = dict(logging_config(server_name="app7", level="INFO")["formatters"]["json"])
    formatter = spec.pop("()")(**spec)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("observability.test")
    logger.addHandler(handler)
    logger.propagate = False
    token = request_id_var.set("req-1234abcd")
    try:
        # when something is logged during a request, with an extra field
        logger.warning("lock acquired", extra={"fencing_token": 42})
    finally:
        request_id_var.reset(token)
        logger.removeHandler(handler)
    # then the line is one JSON object with the server, the request id and the extra field
    line = json.loads(stream.getvalue())
    assert line["message"] == "lock acquired"
    assert line["server"] == "app7"
    assert line["request_id"] == "req-1234abcd"
    assert line["fencing_token"] == 42
    assert line["level"] == "WARNING"
