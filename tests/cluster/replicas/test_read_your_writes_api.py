"""Read-your-writes for an API client that keeps no cookies, through NGINX to any app server.

Each ``POST /api/contacts`` is followed at once by ``GET /api/contacts/{id}`` with the same bearer
token and no cookies; NGINX spreads the two over the three servers (least_conn), and reads go to
the replica unless it has not replayed the write yet. Every GET must find the contact. The
replica applies each commit 50 ms late (``recovery_min_apply_delay``): still healthy for the
router (under 100 ms), but behind every write a client reads back at once, as a busy replica is.
"""

import http.cookiejar
import secrets

import psycopg
import pytest
import requests

from deploy.local import cluster
from deploy.nginx.render import RATELIMIT_BYPASS_HEADER
from tests.cluster.replicas.conftest import psql_on_replica
from tests.support import cluster_env, manage

pytestmark = pytest.mark.cluster

USERNAME = "ryw-test-staff"
PASSWORD = "ryw-test-password"
PAIRS = 200


@pytest.fixture
def replica_50ms_behind(cluster_settings: cluster.Settings):
    psql_on_replica(cluster_settings, "ALTER SYSTEM SET recovery_min_apply_delay = '50ms'")
    psql_on_replica(cluster_settings, "SELECT pg_reload_conf()")
    try:
        yield
    finally:
        psql_on_replica(cluster_settings, "ALTER SYSTEM RESET recovery_min_apply_delay")
        psql_on_replica(cluster_settings, "SELECT pg_reload_conf()")


def _login(session: requests.Session, nginx_url: str) -> str:
    login = session.post(
        f"{nginx_url}/auth/login", json={"username": USERNAME, "password": PASSWORD}, timeout=10
    )
    assert login.status_code == 200, login.text
    return f"Bearer {login.json()['token']}"


@pytest.fixture
def api_client(cluster_settings: cluster.Settings, nginx_url: str) -> requests.Session:
    """A logged-in API client whose cookie jar refuses every cookie."""
    made = manage(
        "ensure_demo_user", "--username", USERNAME, "--password", PASSWORD,
        "--church", "Read-your-writes test church", env=cluster_env(cluster_settings),
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    session = requests.Session()
    session.trust_env = False
    session.verify = str(cluster_settings.state_dir / "nginx" / "tls.crt")
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    session.headers[RATELIMIT_BYPASS_HEADER] = cluster_settings.ratelimit_bypass_token()
    login = session.post(
        f"{nginx_url}/auth/login", json={"username": USERNAME, "password": PASSWORD}, timeout=10
    )
    assert login.status_code == 200, login.text
    session.headers["Authorization"] = f"Bearer {login.json()['token']}"
    return session


def test_an_api_client_without_cookies_reads_every_contact_it_just_created(
    cluster_settings, nginx_url, api_client, replica_50ms_behind
):
    created: list[int] = []
    misses: list[tuple[int, int, str]] = []
    # the same user with another token is another principal: its reads are not held back
    other_token = _login(api_client, nginx_url)
    others_missed = 0
    try:
        # when it creates a contact and reads it back, many times
        for _ in range(PAIRS):
            phone = f"+1212{secrets.randbelow(7_000_000) + 2_000_000:07d}"
            response = api_client.post(f"{nginx_url}/api/contacts", json={"phone": phone}, timeout=10)
            if response.status_code == 409:  # a number from an earlier run
                continue
            assert response.status_code == 201, response.text
            assert not api_client.cookies  # the cookie it was offered is not kept
            contact_id = response.json()["id"]
            created.append(contact_id)
            if len(created) <= 20:  # first: is the replica really behind a write read back at once?
                other = api_client.get(
                    f"{nginx_url}/api/contacts/{contact_id}",
                    headers={"Authorization": other_token},
                    timeout=10,
                )
                others_missed += other.status_code == 404
            read = api_client.get(f"{nginx_url}/api/contacts/{contact_id}", timeout=10)
            if read.status_code != 200:
                misses.append((contact_id, read.status_code, read.headers.get("X-Served-By", "")))
    finally:
        with psycopg.connect(
            host="127.0.0.1", port=cluster_settings.pg_primary_port, dbname=cluster_settings.db_name,
            user=cluster_settings.db_user, password=cluster_settings.db_password, autocommit=True,
        ) as conn:  # fmt: skip
            conn.execute("DELETE FROM messaging_contact WHERE id = ANY(%s)", [created])
    # then every read found its contact, where another principal's immediate reads did not
    assert others_missed > 0, "the replica was never behind: this test would prove nothing"
    assert len(created) >= PAIRS - 10
    assert misses == [], f"{len(misses)} of {len(created)} reads missed the write: {misses[:10]}"
