"""Revocation is immediate on every server: a token logged out on one app server is refused by
the others (and through NGINX) on the very next request, though all of them had it cached."""

import pytest
import requests

from tests.support import cluster_env, manage

pytestmark = pytest.mark.cluster

TOKENS = 100
USERNAME = "cluster-test-revocation"

MINT = """
from messaging.contacts.services import staff_member_ensure
from messaging.tokens.services import api_token_create
staff = staff_member_ensure(
    username={username!r}, password="cluster-test-password", church_name="Cluster test church"
)
print("\\n".join(api_token_create(user=staff.user) for _ in range({count})))
"""


@pytest.fixture(scope="module")
def tokens(cluster_settings):
    # Minted in the cluster's database directly: a hundred password logins would take minutes.
    script = MINT.format(username=USERNAME, count=TOKENS)
    result = manage("shell", "-c", script, env=cluster_env(cluster_settings), timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    minted = [line for line in result.stdout.split() if len(line) > 30]
    assert len(minted) == TOKENS, result.stderr[-500:]
    return minted


def test_logout_on_one_server_then_request_on_the_others_0_of_100_accepted(
    cluster_settings, http, nginx_url, tokens
):
    servers = [f"http://127.0.0.1:{port}" for port in cluster_settings.app_ports]
    direct = requests.Session()
    direct.trust_env = False
    accepted, refused = [], 0
    for index, token in enumerate(tokens):
        bearer = {"Authorization": f"Bearer {token}"}
        # given: every server (and several of its worker processes) has checked the token
        for server in servers:
            for _ in range(4):
                warm = direct.get(f"{server}/api/contacts?limit=1", headers=bearer, timeout=10)
                assert warm.status_code == 200, warm.text
        # when: it is logged out on one server
        logout_server = servers[index % len(servers)]
        assert direct.post(f"{logout_server}/auth/logout", headers=bearer, timeout=10).status_code == 204
        # then: the next request on every other server, and through NGINX, is refused
        others = [server for server in servers if server != logout_server]
        answers = [
            direct.get(f"{server}/api/contacts?limit=1", headers=bearer, timeout=10) for server in others
        ]
        answers.append(http.get(f"{nginx_url}/api/contacts?limit=1", headers=bearer, timeout=10))
        for answer in answers:
            if answer.status_code == 401:
                refused += 1
            else:
                accepted.append((index, answer.status_code, answer.headers.get("X-Served-By")))
    assert accepted == [], f"{len(accepted)} of {len(accepted) + refused} requests after a logout accepted"
    assert refused == TOKENS * len(servers)
