"""The edge's overload answer, from a real NGINX rendered from the templates.

Every app server of the upstream is unreachable here (a port nobody listens on), which is the
same NGINX-made 502 as every server being at ``max_conns``: the client must get the quick JSON
503 with ``Retry-After``, never a 502 page. A 502 an app server sent itself is not rewritten
(``proxy_intercept_errors`` stays off), which tests/cluster/edge/test_overload.py covers.
"""

import json
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from deploy.nginx.render import render_nginx
from tests.programs import require_program
from tests.support import free_port, stop_process, wait_until

pytestmark = pytest.mark.unit


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def edge(tmp_path):
    """A real NGINX from the templates whose only app server refuses connections; yields its URL."""
    nginx, openssl = require_program("nginx", "nginx"), require_program("openssl", "openssl")
    tmp_path.chmod(0o755)  # NGINX's workers run unprivileged
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    # three different ports: free_port gives the first free one, so each is taken before the next
    dead = free_port()
    https = free_port(range(dead + 1, 32000))
    http = free_port(range(https + 1, 32000))
    conf = render_nginx(
        tmp_path,
        environ={},
        listen_host="127.0.0.1",
        server_name="127.0.0.1",
        http_port=http,
        https_port=https,
        tls_cert=str(cert),
        tls_key=str(key),
        app_servers=f"127.0.0.1:{dead}",
        websocket_servers=f"127.0.0.1:{dead}",
        state_dir=str(tmp_path),
        log_dir=str(tmp_path),
        overload_retry_after=7,
    )
    process = subprocess.Popen(
        [nginx, "-e", str(tmp_path / "error.log"), "-c", str(conf), "-g", "daemon off;"], cwd=tmp_path
    )
    try:
        wait_until(lambda: _accepts(https), timeout=10, message=f"NGINX does not listen on {https}")
        yield f"https://127.0.0.1:{https}"
    finally:
        stop_process(process, timeout=10)


def _get(url: str) -> tuple[int, dict[str, str], bytes, float]:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, context=context, timeout=10) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read(), time.monotonic() - started
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read(), time.monotonic() - started


@pytest.mark.parametrize("path", ["/health", "/api/messages?limit=50", "/auth/login"])
def test_no_app_server_to_take_the_request_is_a_quick_json_503_with_retry_after(edge, path):
    # when: no app server can take the request
    status, headers, body, seconds = _get(edge + path)
    # then: a 503 in JSON, with Retry-After and the edge's security headers, at once
    assert status == 503
    assert headers["Retry-After"] == "7"
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {
        "error": "overloaded",
        "detail": "every app server is busy; retry after Retry-After seconds",
    }
    assert "Strict-Transport-Security" in headers
    assert seconds < 5  # bounded by the 2 s connect timeout, never the 60 s read timeout
