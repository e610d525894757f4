"""The live server's operations paths, served by its ASGI app against the real primary and Redis:
the health runner's reports, the app servers' /metrics rule and request-id rule."""

import asyncio
import json
from typing import Any

import pytest
from django.test import override_settings

from health import runner
from live.server import LiveServer

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture(autouse=True)
def _fresh_probe_results():
    runner.clear_cache()
    yield
    runner.clear_cache()


def _get(server: LiveServer, path: str, *, client: str = "127.0.0.1", headers=(), method: str = "GET"):
    """One HTTP request through the server's ASGI app: (status, headers, body)."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "client": (client, 51000),
        "headers": [(name.encode(), value.encode()) for name, value in headers],
    }
    asyncio.run(server.operations(scope, receive, send))
    start, body = sent
    return start["status"], dict(start["headers"]), body["body"]


def test_ready_is_the_health_runners_report_with_the_app_servers_keys():
    # when
    status, headers, body = _get(LiveServer(), "/health/ready")
    # then
    report = json.loads(body)
    assert (status, headers[b"content-type"], headers[b"cache-control"]) == (
        200,
        b"application/health+json",
        b"no-store",
    )
    assert report["description"] == "ready" and report["serviceId"].endswith("-live")
    assert set(report["checks"]) == {
        "database:responseTime",
        "broker-redis:responseTime",
        "server:draining",
        "connections:count",
    }
    assert report["checks"]["server:draining"][0]["observedValue"] is False


def test_a_draining_live_server_fails_ready_and_stays_live():
    # given
    server = LiveServer()
    server.draining = True
    # when
    ready_status, _, ready_body = _get(server, "/health/ready")
    live_status, _, live_body = _get(server, "/health/live")
    # then: the same key and answer as a draining app server's
    draining = json.loads(ready_body)["checks"]["server:draining"][0]
    assert (ready_status, draining["status"], draining["output"]) == (503, "fail", "shutting down")
    alive = json.loads(live_body)["checks"]["server:draining"][0]
    assert (live_status, alive["status"], alive["observedValue"]) == (200, "pass", True)


@override_settings(
    METRICS_ALLOWED_NETWORKS=["10.0.0.0/8"], METRICS_TOKEN="", HEALTH_TRUSTED_PROXIES=["127.0.0.1/32"]
)
@pytest.mark.parametrize(
    ("client", "forwarded", "status"),
    [
        ("10.1.2.3", "", 200),
        ("::ffff:10.1.2.3", "", 200),  # an IPv4 peer on a dual-stack socket
        ("203.0.113.9", "", 404),
        ("203.0.113.9", "10.1.2.3", 404),  # forged from outside
        ("127.0.0.1", "203.0.113.9", 404),  # the edge says who the client was
    ],
)
def test_metrics_follow_the_app_servers_rule(client, forwarded, status):
    headers = [("x-forwarded-for", forwarded)] if forwarded else []
    assert _get(LiveServer(), "/metrics", client=client, headers=headers)[0] == status


def test_operations_paths_take_get_and_head_only():
    status, headers, _ = _get(LiveServer(), "/health/ready", method="POST")
    assert (status, headers[b"allow"]) == (405, b"GET, HEAD")
