"""Every response through NGINX carries the security headers and a request id, errors included."""

import re
import uuid

import pytest

from deploy.local import cluster
from tests.cluster.edge.conftest import outside_address
from tests.support import wait_until

pytestmark = pytest.mark.cluster

SECURITY_HEADERS = {
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "X-Frame-Options": "SAMEORIGIN",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


def assert_security_headers(status, headers):
    headers = {name.lower(): value for name, value in headers.items()}
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name.lower()) == value, (status, name, headers)
    assert "default-src 'self'" in headers.get("content-security-policy", "")
    assert re.fullmatch(r"[A-Za-z0-9._:-]{8,128}", headers.get("x-request-id", ""))


def test_security_headers_on_success_and_app_errors(http, nginx_url):
    # when
    ok = http.get(f"{nginx_url}/health", timeout=5)
    missing = http.get(f"{nginx_url}/no-such-page-{uuid.uuid4().hex}", timeout=5)
    # then: one copy of each, even where the app sets its own (Django's X-Frame-Options is DENY)
    assert (ok.status_code, missing.status_code) == (200, 404)
    for response in (ok, missing):
        assert_security_headers(response.status_code, response.headers)
        assert "," not in response.headers["X-Frame-Options"]


def test_security_headers_on_responses_nginx_makes_itself(
    http, outside_client, burst, nginx_url, cluster_settings
):
    # when
    too_large = http.post(f"{nginx_url}/api/upload", data=b"x" * (1024 * 1024 + 1), timeout=10)
    limited = next(r for r in burst("/auth/login", 60, source=outside_address()).replies if r.status == 429)
    forbidden = outside_client().get(f"{nginx_url}/metrics", timeout=5)
    vip = cluster.EdgeNetwork.of(cluster_settings).vip
    redirect = http.get(
        f"http://{vip}:{cluster_settings.nginx_http_port}/health", allow_redirects=False, timeout=5
    )
    # then
    responses = [(r.status_code, r.headers) for r in (too_large, forbidden, redirect)]
    assert [status for status, _ in responses] == [413, 403, 301]
    for status, headers in [*responses, (limited.status, limited.headers)]:
        assert_security_headers(status, headers)


def test_a_body_over_the_limit_gets_413_with_a_json_body(http, nginx_url):
    # when
    response = http.post(f"{nginx_url}/webhooks/probe", data=b"x" * (2 * 1024 * 1024), timeout=10)
    # then
    assert response.status_code == 413
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"error": "request_too_large", "detail": "the request body is larger than 1m"}


def test_a_body_under_the_limit_reaches_the_app(http, nginx_url):
    response = http.post(f"{nginx_url}/no-such-form", data=b"x" * (1024 * 1024 - 1024), timeout=10)
    assert response.status_code != 413
    assert response.headers.get("X-Served-By")


def _wait_for_line(path, needle, timeout=5.0):
    lines = wait_until(
        lambda: [line for line in path.read_text(errors="replace").splitlines() if needle in line],
        timeout=timeout,
        interval=0.1,
        message=f"no line of {path.name} has {needle}",
    )
    return lines[-1]


def test_a_client_request_id_is_returned_logged_and_passed_to_the_app(http, nginx_url, cluster_settings):
    # given
    request_id = f"edge-{uuid.uuid4().hex}"
    # when
    response = http.get(f"{nginx_url}/health", headers={"X-Request-ID": request_id}, timeout=5)
    # then
    assert response.headers["X-Request-ID"] == request_id
    logged = _wait_for_line(cluster_settings.log_dir / "nginx-access.log", request_id)
    assert logged is not None and '"status":200' in logged
    app_log = cluster_settings.log_dir / f"{response.headers['X-Served-By']}.log"
    assert _wait_for_line(app_log, request_id) is not None


@pytest.mark.parametrize("sent", [None, "has spaces in it", "x" * 200], ids=["absent", "spaces", "long"])
def test_a_missing_or_malformed_request_id_is_replaced_by_a_generated_one(http, nginx_url, sent):
    headers = {"X-Request-ID": sent} if sent else {}
    response = http.get(f"{nginx_url}/health", headers=headers, timeout=5)
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])
