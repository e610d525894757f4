"""A user's tokens end on every server at once: after ``POST /auth/logout-all`` on one server,
and after its password is changed (here by ``manage.py``, as an operator would), every token of
that user is refused by every server and through NGINX, though all of them had it cached."""

import uuid

import pytest
import requests

from tests.support import cluster_env, manage

pytestmark = pytest.mark.cluster

MINT = """
from messaging.contacts.services import staff_member_ensure
from messaging.tokens.services import api_token_create
staff = staff_member_ensure(username={username!r}, password="old-password", church_name="Cluster test church")
print("\\n".join(api_token_create(user=staff.user) for _ in range(3)))
"""

NEW_PASSWORD = """
from django.contrib.auth import get_user_model
user = get_user_model().objects.get(username={username!r})
user.set_password("new-password")
user.save()
"""

DELETE = """
from django.contrib.auth import get_user_model
get_user_model().objects.filter(username={username!r}).delete()
"""


@pytest.fixture
def tokens(cluster_settings):
    username = f"cluster-test-lifetime-{uuid.uuid4().hex[:12]}"
    result = manage(
        "shell", "-c", MINT.format(username=username), env=cluster_env(cluster_settings), timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    minted = [line for line in result.stdout.split() if len(line) > 30]
    assert len(minted) == 3, result.stderr[-500:]
    yield username, minted
    manage("shell", "-c", DELETE.format(username=username), env=cluster_env(cluster_settings))


def _answers(cluster_settings, http, nginx_url, token: str) -> list[int]:
    """The status of one API read with ``token`` on every app server and through NGINX."""
    direct = requests.Session()
    direct.trust_env = False
    bearer = {"Authorization": f"Bearer {token}"}
    answers = [
        direct.get(f"http://127.0.0.1:{port}/api/contacts?limit=1", headers=bearer, timeout=10).status_code
        for port in cluster_settings.app_ports
    ]
    answers.append(http.get(f"{nginx_url}/api/contacts?limit=1", headers=bearer, timeout=10).status_code)
    return answers


def test_logout_all_on_one_server_ends_every_token_on_all(cluster_settings, http, nginx_url, tokens):
    _, minted = tokens
    everywhere = len(cluster_settings.app_ports) + 1
    # given: every server has checked every token (twice, so several workers may hold it)
    for token in minted * 2:
        assert _answers(cluster_settings, http, nginx_url, token) == [200] * everywhere
    # when: the first token logs out everywhere, on the first server
    first = f"http://127.0.0.1:{cluster_settings.app_ports[0]}"
    logout = requests.post(
        f"{first}/auth/logout-all", headers={"Authorization": f"Bearer {minted[0]}"}, timeout=10
    )
    # then: all three are refused by every server and through NGINX
    assert logout.status_code == 204, logout.text
    assert [_answers(cluster_settings, http, nginx_url, token) for token in minted] == [
        [401] * everywhere
    ] * 3


def test_a_new_password_ends_every_token_on_all_servers(cluster_settings, http, nginx_url, tokens):
    username, minted = tokens
    everywhere = len(cluster_settings.app_ports) + 1
    for token in minted * 2:
        assert _answers(cluster_settings, http, nginx_url, token) == [200] * everywhere
    # when: an operator sets a new password
    changed = manage("shell", "-c", NEW_PASSWORD.format(username=username), env=cluster_env(cluster_settings))
    assert changed.returncode == 0, changed.stderr
    # then: every token of the user is refused everywhere
    assert [_answers(cluster_settings, http, nginx_url, token) for token in minted] == [
        [401] * everywhere
    ] * 3
