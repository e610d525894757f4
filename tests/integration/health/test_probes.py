"""The four probes through Django's full middleware stack, against the real services."""

import json
import time

import pytest
from django.conf import settings
from django.db import connections
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from config.databases import PRIMARY_DB_ALIAS
from health import runner

pytestmark = [pytest.mark.integration, pytest.mark.django_db(databases=[PRIMARY_DB_ALIAS, "replica"])]

TOKEN = "integration-detailed-token-5f2c"


def _body(response) -> dict:
    assert response["Content-Type"] == "application/health+json"
    return json.loads(response.content)


def test_health_and_live_touch_no_database_and_ignore_the_host_header(client, django_assert_num_queries):
    # given: a Host header no ALLOWED_HOSTS lists, as a kubelet sends (the pod IP)
    pod_ip = "10.42.7.19"
    assert client.get("/health/not-a-probe", HTTP_HOST=pod_ip).status_code == 400

    # when
    with django_assert_num_queries(0), CaptureQueriesContext(connections["replica"]) as replica:
        balancer = client.get("/health", HTTP_HOST=pod_ip)
        live = client.get("/health/live", HTTP_HOST=pod_ip)

    # then
    assert len(replica) == 0
    assert (balancer.status_code, _body(balancer)["status"]) == (200, "pass")
    assert (live.status_code, _body(live)["status"]) == (200, "pass")
    assert balancer["X-Served-By"] == settings.APP_SERVER_NAME
    assert balancer["Cache-Control"] == "no-store"


def test_ready_passes_with_everything_up(client):
    # when
    response = client.get("/health/ready", HTTP_HOST="10.42.7.19")

    # then
    body = _body(response)
    assert response.status_code == 200, body
    assert body["status"] == "pass"
    checks = body["checks"]
    assert checks["database:responseTime"][0]["componentId"] == "primary"
    assert checks["database:responseTime"][0]["observedUnit"] == "ms"
    assert checks["migrations:pending"][0]["observedValue"] == 0
    assert checks["lock-redis:quorum"][0]["observedValue"] == len(settings.LOCK_REDIS_URLS)
    assert checks["server:draining"][0]["observedValue"] is False


def _detailed_with_replica_caught_up(client, attempts: int = 10):
    """A busy machine can hold replay back for a moment; the lag check is right to warn then."""
    for _ in range(attempts):
        runner.clear_cache()
        response = client.get("/health/detailed")
        replica = json.loads(response.content)["checks"]["database:replicationLag"][0]
        if replica["status"] == "pass":
            break
        time.sleep(0.2)
    return response


def test_detailed_reports_every_dependency_with_observed_values(client):
    # when
    response = _detailed_with_replica_caught_up(client)

    # then
    body = _body(response)
    assert response.status_code == 200, body
    checks = body["checks"]
    for key in ("database:responseTime", "lock-redis:quorum", "broker-redis:responseTime"):
        assert checks[key][0]["status"] == "pass", key
    replica = checks["database:replicationLag"][0]
    assert (replica["componentId"], replica["status"], replica["observedUnit"]) == ("replica", "pass", "ms")
    assert 0 <= replica["observedValue"] < settings.REPLICA_MAX_LAG_MS
    roles = {role["componentId"]: (role["status"], role["observedValue"]) for role in checks["database:role"]}
    assert roles == {"primary": ("pass", "leader"), "replica": ("pass", "replica")}
    assert [node["componentId"] for node in checks["lock-redis:responseTime"]] == [
        "node-1",
        "node-2",
        "node-3",
    ]
    assert checks["disk:utilization"][0]["observedUnit"] == "percent"
    assert checks["memory:utilization"][0]["observedUnit"] == "percent"
    # The test settings send Celery to a broker database no worker listens on.
    assert checks["celery:workers"][0]["observedUnit"] == "workers"


@override_settings(HEALTH_DETAILED_TOKEN=TOKEN)
def test_detailed_is_hidden_from_other_networks_unless_the_token_is_shown(client):
    # when
    from_outside = client.get("/health/detailed", REMOTE_ADDR="203.0.113.9")
    forged = client.get("/health/detailed", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")
    wrong_token = client.get(
        "/health/detailed", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer not-the-token"
    )
    with_token = client.get(
        "/health/detailed", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION=f"Bearer {TOKEN}"
    )

    # then
    assert [from_outside.status_code, forged.status_code, wrong_token.status_code] == [404, 404, 404]
    assert with_token.status_code == 200
    text = with_token.content.decode()
    secrets = [
        TOKEN,
        settings.DATABASES[PRIMARY_DB_ALIAS]["PASSWORD"],
        settings.BROKER_REDIS_URL,
        settings.CELERY_BROKER_URL,
        *settings.LOCK_REDIS_URLS,
        *(f"{db['HOST']}:{db['PORT']}" for db in settings.DATABASES.values()),
        *(str(db["HOST"]) for db in settings.DATABASES.values()),
    ]
    assert [secret for secret in secrets if secret and secret in text] == []


def test_a_probe_answers_only_get_and_head(client):
    assert client.post("/health/ready").status_code == 405
    assert client.head("/health").status_code == 200
