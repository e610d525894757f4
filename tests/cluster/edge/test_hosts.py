"""Hosts the edge does not serve: never echoed into a redirect, answered by the default server.

The local cluster's edge serves its virtual address (the first name), ``localhost`` and each
edge's own address; any other Host header gets no answer on plain HTTP (444: the connection is
closed) and a JSON 421 on HTTPS.
"""

import socket

import pytest

from deploy.local import cluster
from tests.cluster.edge.test_headers import assert_security_headers

pytestmark = pytest.mark.cluster


def raw_http(port: int, host: str | None, path: str = "/x") -> bytes:
    """What NGINX sends back to one plain-HTTP request with this Host header (b"" if nothing)."""
    request = f"GET {path} HTTP/1.1\r\n" + (f"Host: {host}\r\n" if host is not None else "")
    vip = cluster.EdgeNetwork.of(cluster.Settings()).vip
    with socket.create_connection((vip, port), timeout=5) as sock:
        sock.sendall((request + "Connection: close\r\n\r\n").encode())
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    return data


@pytest.mark.parametrize("host", ["evil.example", "localhost.evil.example", "evil.example:28443"])
def test_plain_http_for_a_foreign_host_is_closed_without_a_redirect(cluster_settings, host):
    # when
    answer = raw_http(cluster_settings.nginx_http_port, host)
    # then: no response at all, so no Location naming anyone
    assert answer == b""


@pytest.mark.parametrize("host", ["", None])
def test_plain_http_without_a_host_is_refused_without_a_redirect(cluster_settings, host):
    answer = raw_http(cluster_settings.nginx_http_port, host)
    assert answer.startswith(b"HTTP/1.1 400")
    assert b"Location" not in answer


def test_a_served_host_is_redirected_to_the_configured_name(cluster_settings, nginx_url):
    answer = raw_http(cluster_settings.nginx_http_port, "localhost", "/x?y=1").decode()
    assert answer.startswith("HTTP/1.1 301")
    assert f"\r\nLocation: {nginx_url}/x?y=1\r\n" in answer


def test_https_for_a_foreign_host_is_a_json_421_with_the_security_headers(http, nginx_url):
    # when
    response = http.get(f"{nginx_url}/api/contacts", headers={"Host": "evil.example"}, timeout=5)
    # then: NGINX answered itself; no app server saw it
    assert response.status_code == 421
    assert response.json()["error"] == "misdirected_request"
    assert "X-Served-By" not in response.headers
    assert_security_headers(response.status_code, response.headers)


def test_https_for_the_served_hosts_reaches_the_app(http, nginx_url, edge_network):
    for host in (edge_network.vip, "localhost"):
        response = http.get(f"{nginx_url}/health", headers={"Host": host}, timeout=5)
        assert response.status_code == 200
        assert response.headers.get("X-Served-By")
