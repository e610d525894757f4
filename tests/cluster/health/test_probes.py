"""The probes on the running cluster, directly on an app server and through NGINX."""

import pytest
import requests
from django.conf import settings

from config.databases import PRIMARY_DB_ALIAS
from tests.cluster.health.conftest import Probe, check, first_probe_with, probe

pytestmark = pytest.mark.cluster

TOKEN = "side-server-detailed-token-2b7e"


def _answered_200(answer: Probe) -> bool:
    return answer.status_code == 200


@pytest.mark.parametrize("path", ["/health", "/health/live", "/health/ready", "/health/detailed"])
def test_every_probe_passes_on_every_server_and_through_nginx(cluster_settings, http, nginx_url, path):
    # given
    servers = [f"http://127.0.0.1:{port}" for port in cluster_settings.app_ports]

    # when: (a server another test is restarting answers 503 while it drains, so allow for that)
    direct = [first_probe_with(f"{server}{path}", _answered_200, within=15) for server in servers]
    through_nginx = http.get(f"{nginx_url}{path}", timeout=10)

    # then
    assert all(answer.body["status"] in ("pass", "warn") for answer in direct), direct
    assert through_nginx.status_code == 200
    assert through_nginx.headers["Content-Type"] == "application/health+json"
    assert through_nginx.headers["X-Served-By"] in cluster_settings.server_names


def test_the_balancer_and_liveness_probes_answer_a_kubelet_host_header(app_url):
    # given: the Host a kubelet sends is the pod's IP, which ALLOWED_HOSTS does not list
    pod_ip = {"Host": "10.42.7.19:8000"}
    assert requests.get(f"{app_url}/admin/login/", headers=pod_ip, timeout=10).status_code == 400

    # when
    answers = [
        probe(f"{app_url}{path}", headers=pod_ip) for path in ("/health", "/health/live", "/health/ready")
    ]

    # then
    assert [answer.status_code for answer in answers] == [200, 200, 200]


def test_detailed_is_a_404_for_a_client_outside_the_allowed_networks(app_url, edge_network):
    # given: loopback is a trusted proxy, so the address it forwards is the client's; the local
    # cluster allows loopback and the host's end of the edge bridge (an operator on the host)
    outside = {"X-Forwarded-For": "203.0.113.9"}

    # when
    hidden = probe(f"{app_url}/health/detailed", headers=outside)
    forged = probe(
        f"{app_url}/health/detailed", headers={"X-Forwarded-For": f"{edge_network.host_address}, 203.0.113.9"}
    )
    inside = probe(f"{app_url}/health/detailed", headers={"X-Forwarded-For": edge_network.host_address})

    # then: (inside is let in; it may be 503 while another test has broken something)
    assert (hidden.status_code, forged.status_code) == (404, 404)
    assert inside.status_code in (200, 503)
    assert "database:responseTime" in inside.body["checks"]


def test_detailed_with_the_token_shows_values_and_no_secret(side_server):
    # given: a server configured with a token, and a client outside the allowed networks
    server = side_server(HEALTH_DETAILED_TOKEN=TOKEN)
    outside = {"X-Forwarded-For": "203.0.113.9"}

    # when
    without = requests.get(f"{server.url}/health/detailed", headers=outside, timeout=10)
    wrong = requests.get(
        f"{server.url}/health/detailed", headers={**outside, "Authorization": "Bearer nope"}, timeout=10
    )
    granted = requests.get(
        f"{server.url}/health/detailed", headers={**outside, "Authorization": f"Bearer {TOKEN}"}, timeout=10
    )

    # then
    assert (without.status_code, wrong.status_code, granted.status_code) == (404, 404, 200)
    body = granted.json()
    assert check(body, "database:responseTime", "primary")["observedUnit"] == "ms"
    assert check(body, "database:replicationLag", "replica")["observedUnit"] == "ms"
    # each alias reaches the member in its role: the leader for writes, a replica for reads
    assert check(body, "database:role", "primary")["observedValue"] == "leader"
    assert check(body, "database:role", "replica")["observedValue"] == "replica"
    secrets = [
        TOKEN,
        str(settings.DATABASES[PRIMARY_DB_ALIAS]["PASSWORD"]),
        f"{settings.DATABASES['default']['USER']}:",
        settings.BROKER_REDIS_URL,
        *settings.LOCK_REDIS_URLS,
        *(str(db["HOST"]) for db in settings.DATABASES.values()),
        *(f":{db['PORT']}" for db in settings.DATABASES.values()),
    ]
    assert [secret for secret in secrets if secret in granted.text] == []
