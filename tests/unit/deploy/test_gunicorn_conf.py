"""The shared gunicorn config keeps the promises the deployment relies on."""

import datetime
import logging
import os
import runpy
from types import SimpleNamespace

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger

from deploy.local.cluster import REPO

pytestmark = pytest.mark.unit

CONF = REPO / "deploy" / "gunicorn" / "gunicorn.conf.py"
CONF_VARIABLES = (
    "GUNICORN_WORKERS",
    "GUNICORN_WORKER_CLASS",
    "GUNICORN_THREADS",
    "GUNICORN_GRACEFUL_TIMEOUT",
    "GUNICORN_MAX_REQUESTS",
    "GUNICORN_MAX_REQUESTS_JITTER",
    "GUNICORN_KEEPALIVE",
    "GUNICORN_BACKLOG",
    "HEALTH_DRAIN_SECONDS",
)


@pytest.fixture
def conf(monkeypatch) -> dict:
    for name in CONF_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return runpy.run_path(str(CONF))


def test_graceful_timeout_covers_the_drain(conf):
    assert conf["graceful_timeout"] >= conf["health_drain_seconds"]


def test_workers_are_recycled_with_jitter_so_they_never_restart_together(conf):
    assert conf["max_requests"] > 0
    assert 0 < conf["max_requests_jitter"] < conf["max_requests"]


def test_the_control_socket_is_off_and_the_access_log_carries_the_request_id(conf):
    assert conf["control_socket_disable"] is True
    assert "%({x-request-id}o)s" in conf["access_log_format"]


def _access_line(conf: dict, *, request_headers: list, response_headers: list) -> str:
    """The line gunicorn's own access logger writes with this config's format."""
    cfg = Config()
    cfg.set("access_log_format", conf["access_log_format"])
    cfg.set("accesslog", "-")
    logger = Logger(cfg)
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logger.access_log.handlers = [handler]
    request = SimpleNamespace(headers=request_headers)
    response = SimpleNamespace(status="200 OK", sent=2, headers=response_headers)
    environ = {"REMOTE_ADDR": "127.0.0.1", "REQUEST_METHOD": "GET", "RAW_URI": "/health/live",
               "SERVER_PROTOCOL": "HTTP/1.1"}  # fmt: skip
    logger.access(response, request, environ, datetime.timedelta(milliseconds=3))
    (line,) = lines
    return line


def test_a_clients_request_id_cannot_forge_fields_of_the_access_log(conf, client):
    # given: a client's id that would add fields (and a fake request) to a line written raw
    forged = 'abcdefgh 200 2 1ms rid=x\n127.0.0.1 "GET /admin/ HTTP/1.1" 200'
    response = client.get("/no-such-page/", HTTP_X_REQUEST_ID=forged)
    # when gunicorn logs the request
    line = _access_line(
        conf, request_headers=[("X-REQUEST-ID", forged)], response_headers=list(response.items())
    )
    # then the line carries the id the app kept (a fresh one), and nothing the client wrote
    assert line.endswith(f"rid={response['X-Request-ID']}")
    assert "abcdefgh" not in line and "/admin/" not in line
    assert line.count('"') == 2


def test_an_acceptable_request_id_from_the_edge_is_logged_as_sent(conf, client):
    response = client.get("/no-such-page/", HTTP_X_REQUEST_ID="edge-id-0123456789")
    line = _access_line(
        conf,
        request_headers=[("X-REQUEST-ID", "edge-id-0123456789")],
        response_headers=list(response.items()),
    )
    assert line.endswith("rid=edge-id-0123456789")


def test_the_environment_overrides_the_worker_choice(monkeypatch):
    monkeypatch.setenv("GUNICORN_WORKER_CLASS", "sync")
    monkeypatch.setenv("GUNICORN_WORKERS", "7")
    monkeypatch.setenv("GUNICORN_THREADS", "1")
    conf = runpy.run_path(str(CONF))
    assert (conf["worker_class"], conf["workers"], conf["threads"]) == ("sync", 7, 1)


def test_the_defaults_are_the_benchmarks_choice(conf):
    # ADR 0007: gthread, at least one process per core, threads for the requests that wait
    assert conf["worker_class"] == "gthread"
    assert conf["workers"] >= (os.cpu_count() or 1) and conf["threads"] > 1
    # NGINX closes idle upstream connections after 60 s; gunicorn must not close them first
    assert conf["keepalive"] > 60


def test_the_backlog_holds_far_more_than_the_edge_lets_in_at_once(conf):
    # NGINX sends a server at most max_conns requests at once (ADR 0014): the kernel's queue
    # must never be what turns a busy server into refused or timed-out connections.
    from deploy.nginx.render import nginx_settings

    assert conf["backlog"] >= 4 * nginx_settings({}).upstream_max_conns
