"""Operator endpoints (/health/detailed, /metrics, /nginx_status) and the admin answer internal
networks only.

The local cluster's NGINX counts only 127.0.0.1 as internal; an outside client here is another
loopback address (see conftest).
"""

import pytest

pytestmark = pytest.mark.cluster

INTERNAL_ONLY = ["/health/detailed", "/metrics", "/nginx_status", "/admin/", "/admin/login/"]


@pytest.mark.parametrize("path", INTERNAL_ONLY)
def test_an_outside_client_is_refused(outside_client, nginx_url, path):
    # when
    response = outside_client().get(f"{nginx_url}{path}", timeout=5)
    # then: NGINX refused it; no app server saw it
    assert response.status_code == 403
    assert "X-Served-By" not in response.headers


@pytest.mark.parametrize("path", ["/health/detailed", "/metrics"])
def test_an_internal_client_reaches_the_app(http, nginx_url, path):
    response = http.get(f"{nginx_url}{path}", timeout=10)
    assert response.status_code != 403
    assert response.headers.get("X-Served-By")


def test_the_admins_login_form_answers_an_internal_client(http, nginx_url):
    response = http.get(f"{nginx_url}/admin/login/", timeout=10)
    assert response.status_code == 200
    assert response.headers.get("X-Served-By")


def test_nginx_status_answers_an_internal_client(http, nginx_url):
    response = http.get(f"{nginx_url}/nginx_status", timeout=5)
    assert response.status_code == 200
    assert response.text.startswith("Active connections:")


def test_the_public_health_endpoint_is_open_to_everyone(outside_client, nginx_url):
    response = outside_client().get(f"{nginx_url}/health", timeout=5)
    assert response.status_code == 200
