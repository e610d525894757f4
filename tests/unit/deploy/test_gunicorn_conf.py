"""The shared gunicorn config keeps the promises the deployment relies on."""

import os
import runpy

import pytest

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
    assert "%({x-request-id}i)s" in conf["access_log_format"]


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
