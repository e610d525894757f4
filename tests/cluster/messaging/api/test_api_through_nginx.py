"""The messaging API end to end on the running cluster: NGINX, gunicorn, PgBouncer, Celery.

Uses the cluster's real database, so it makes its own church and staff user (idempotently) and
fresh phone numbers and idempotency keys: it can run any number of times.
"""

import secrets
import time
import uuid

import pytest

from tests.support import cluster_env, manage

pytestmark = pytest.mark.cluster

USERNAME = "cluster-test-staff"
PASSWORD = "cluster-test-password"
CHURCH = "Cluster test church"


@pytest.fixture(scope="module")
def staff_user(cluster_settings):
    """Make sure the staff user exists in the cluster's database."""
    made = manage(
        "ensure_demo_user", "--username", USERNAME, "--password", PASSWORD, "--church", CHURCH,
        env=cluster_env(cluster_settings),
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    return USERNAME


def _fresh_phone() -> str:
    return f"+1212{secrets.randbelow(7_000_000) + 2_000_000:07d}"


def test_login_create_contact_send_and_list_through_nginx(http, nginx_url, staff_user):
    # given: a logged-in staff member
    login = http.post(
        f"{nginx_url}/auth/login", json={"username": staff_user, "password": PASSWORD}, timeout=10
    )
    assert login.status_code == 200, login.text
    http.headers["Authorization"] = f"Bearer {login.json()['token']}"
    # and a new contact
    for _ in range(5):  # a random number may exist from an earlier run
        created = http.post(
            f"{nginx_url}/api/contacts", json={"phone": _fresh_phone(), "name": "Lydia"}, timeout=10
        )
        if created.status_code != 409:
            break
    assert created.status_code == 201, created.text
    contact_id = created.json()["id"]

    # when: a message is sent, and the same request retried
    key = uuid.uuid4().hex
    payload = {"contact_id": contact_id, "body": "Hello from the cluster test"}
    sent = http.post(f"{nginx_url}/api/messages", json=payload, headers={"Idempotency-Key": key}, timeout=10)
    retried = http.post(
        f"{nginx_url}/api/messages", json=payload, headers={"Idempotency-Key": key}, timeout=10
    )

    # then: one message, sent by a Celery worker through the development gateway
    assert sent.status_code == 201, sent.text
    assert retried.status_code == 201
    assert retried.json()["replayed"] is True
    [message] = sent.json()["messages"]
    assert [m["id"] for m in retried.json()["messages"]] == [message["id"]]
    deadline = time.monotonic() + 30
    status = message["status"]
    while status == "queued" and time.monotonic() < deadline:
        time.sleep(0.25)
        status = http.get(f"{nginx_url}/api/messages/{message['id']}", timeout=10).json()["status"]
    assert status == "sent"
    listed = http.get(f"{nginx_url}/api/messages", params={"contact": contact_id}, timeout=10).json()
    assert [m["id"] for m in listed["items"]] == [message["id"]]

    # and the token stops working after logout
    assert http.post(f"{nginx_url}/auth/logout", timeout=10).status_code == 204
    assert http.get(f"{nginx_url}/api/contacts", timeout=10).status_code == 401


def test_the_openapi_schema_is_served_through_nginx(http, nginx_url):
    response = http.get(f"{nginx_url}/api/openapi.json", timeout=10)
    assert response.status_code == 200
    assert "/webhooks/sms/inbound" in response.json()["paths"]
