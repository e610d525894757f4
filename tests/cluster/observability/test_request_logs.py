"""A request's id is the same in NGINX's access log and in the app server's JSON log line."""

import uuid

import pytest

from tests.cluster.observability.conftest import json_lines_with

pytestmark = pytest.mark.cluster


def test_request_id_from_nginx_appears_in_both_logs(cluster_settings, http, nginx_url, wait_for_log_lines):
    # given a request id the client chose
    request_id = f"obs-{uuid.uuid4().hex}"
    # when the request goes through NGINX to an app server
    response = http.get(f"{nginx_url}/api/messages", headers={"X-Request-ID": request_id}, timeout=10)
    # then NGINX logged it with that id and the upstream that served it
    nginx_lines = wait_for_log_lines(cluster_settings.log_dir / "nginx-access.log", request_id)
    assert len(nginx_lines) == 1
    upstream_port = int(nginx_lines[0]["upstream"].rsplit(":", 1)[1])
    server = cluster_settings.server_names[cluster_settings.app_ports.index(upstream_port)]
    # and that server logged one JSON line for it, with the same id, its name and the outcome
    app_lines = wait_for_log_lines(cluster_settings.log_dir / f"{server}.log", request_id)
    assert len(app_lines) == 1
    line = app_lines[0]
    assert line["request_id"] == request_id
    assert line["server"] == server == response.headers["X-Served-By"]
    assert line["status"] == response.status_code == nginx_lines[0]["status"]
    assert line["path"] == "/api/messages"
    assert line["duration_ms"] >= 0
    assert response.headers["X-Request-ID"] == request_id


def test_server_makes_a_request_id_when_none_came_with_the_request(app_server):
    # given a request straight to an app server with no X-Request-ID
    import requests

    # when it is answered
    response = requests.get(f"http://127.0.0.1:{app_server.port}/api/messages", timeout=10)
    # then the server made an id, returned it and logged it
    request_id = response.headers["X-Request-ID"]
    assert len(request_id) == 32
    assert [line["request_id"] for line in json_lines_with(app_server.log, request_id)] == [request_id]
