"""The login lockout through NGINX counts per client address: two clients on two outside
addresses on the edge's bridge, each seen by the app as NGINX reports it."""

import uuid
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter

from deploy.local import cluster
from deploy.nginx.render import RATELIMIT_BYPASS_HEADER
from tests.support import cluster_env, manage

pytestmark = pytest.mark.cluster

PASSWORD = "lockout-test-password"

_DELETE_USER = """
from django.contrib.auth import get_user_model
get_user_model().objects.filter(username={username!r}).delete()
"""


class _FromAddress(HTTPAdapter):
    """Connections from one local address: another client, as far as NGINX can tell."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def _client(cluster_settings: cluster.Settings, address: str) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(cluster_settings.state_dir / "nginx" / "tls.crt")
    session.mount("https://", _FromAddress(address))
    session.mount("http://", _FromAddress(address))
    # NGINX's own per-address rate limit is not what this test is about
    session.headers[RATELIMIT_BYPASS_HEADER] = cluster_settings.ratelimit_bypass_token()
    return session


@pytest.fixture
def staff_username(cluster_settings: cluster.Settings):
    username = f"lockout-test-{uuid.uuid4().hex[:12]}"
    made = manage(
        "ensure_demo_user", "--username", username, "--password", PASSWORD,
        "--church", "Lockout test church", env=cluster_env(cluster_settings),
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    yield username
    manage("shell", "-c", _DELETE_USER.format(username=username), env=cluster_env(cluster_settings))


def test_failures_from_one_address_lock_it_while_another_address_logs_in(
    cluster_settings, nginx_url, staff_username
):
    net = cluster.EdgeNetwork.of(cluster_settings)
    attacker, owner = (
        _client(cluster_settings, cluster.add_client_address(cluster_settings, net.outside_client(index)))
        for index in (0, 1)
    )

    def login(session: requests.Session, password: str) -> requests.Response:
        return session.post(
            f"{nginx_url}/auth/login", json={"username": staff_username, "password": password}, timeout=10
        )

    # given: five failures from one address
    failures = [login(attacker, "guess").status_code for _ in range(5)]
    # when: the right password from there, and from the other address
    from_attacker = login(attacker, PASSWORD)
    from_owner = login(owner, PASSWORD)
    # then: only the address that failed is locked out
    assert failures == [401] * 5
    assert from_attacker.status_code == 429, from_attacker.text
    assert from_attacker.json()["field"] == "username"
    assert from_owner.status_code == 200, from_owner.text
