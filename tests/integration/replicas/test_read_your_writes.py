"""Read-your-writes through the middleware (Django's test client) and through Celery task headers."""

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import router
from django.test import Client, RequestFactory

from config.celery import app as celery_app
from config.databases import PRIMARY_DB_ALIAS
from replicas.context import unit_of_work
from replicas.lsn import parse_lsn
from replicas.middleware import position_from_cookie
from replicas.models import RoutingProbe
from replicas.selectors import routing_probe_read
from replicas.services import routing_probe_create
from replicas.signals import TASK_HEADER
from tests.integration.replicas.conftest import REPLICA_DB, primary_lsn

pytestmark = [pytest.mark.integration, REPLICA_DB]

TEST_QUEUE = "replicas-tests"


def test_a_write_sets_the_position_cookie_and_the_next_read_sees_the_write(measured):
    # given a user agent
    client = Client()
    # when it writes, then reads back
    created = client.post("/replicas/debug/probes")
    position = primary_lsn()
    read = client.get(f"/replicas/debug/probes/{created.json()['id']}")
    # then the write went to the primary, the cookie holds a position it covers, the read found it
    assert created.status_code == 201
    assert created.json()["alias"] == PRIMARY_DB_ALIAS
    cookie = created.cookies["replica_lsn"]
    lsn = position_from_cookie(RequestFactory(headers={"cookie": f"replica_lsn={cookie.value}"}).get("/"))
    assert lsn is not None
    assert lsn <= position
    assert cookie["httponly"]
    assert read.status_code == 200


def test_another_users_reads_keep_going_to_the_replica_after_someone_wrote(measured, replayed_probe):
    # given one user who just wrote
    writer = Client()
    writer.post("/replicas/debug/probes")
    probe = replayed_probe()
    # when another user (no cookie) reads on the same thread
    response = Client().get(f"/replicas/debug/probes/{probe.pk}")
    # then the replica answers
    assert response.status_code == 200
    assert response.json()["server"] == "replica"


def test_a_reads_only_request_sets_no_cookie(measured, replayed_probe):
    probe = replayed_probe()
    response = Client().get(f"/replicas/debug/probes/{probe.pk}")
    assert "replica_lsn" not in response.cookies


@celery_app.task(name="tests.replicas.read_then_write")
def read_then_write(probe_id: int) -> dict[str, object]:
    from celery import current_task

    read = routing_probe_read(probe_id=probe_id)
    routing_probe_create(note="task")
    return {
        "header": getattr(current_task.request, TASK_HEADER, None),
        "found": read is not None,
        "after_write": router.db_for_read(RoutingProbe),
    }


@pytest.fixture(scope="module")
def worker():
    """A real Celery worker in this process, on its own queue of the tests' broker database."""
    with start_worker(celery_app, pool="solo", perform_ping_check=False, queues=[TEST_QUEUE]) as started:
        yield started


def test_a_task_enqueued_after_a_write_carries_the_position_and_reads_the_write(measured, worker):
    # given a request that wrote
    with unit_of_work():
        probe = routing_probe_create(note="before task")
        # when it enqueues a task
        result = read_then_write.apply_async(args=(probe.pk,), queue=TEST_QUEUE)
        position_after_write = primary_lsn()
    outcome = result.get(timeout=20)
    # then the task carried a position covering the write, found the row, and read from the
    # primary after its own write
    assert outcome["header"] is not None
    assert parse_lsn(outcome["header"]) <= position_after_write
    assert outcome["found"] is True
    assert outcome["after_write"] == PRIMARY_DB_ALIAS


def test_a_task_enqueued_without_a_write_carries_no_position(measured, worker):
    with unit_of_work():
        result = read_then_write.apply_async(args=(0,), queue=TEST_QUEUE)
    outcome = result.get(timeout=20)
    assert outcome["header"] is None
    assert outcome["found"] is False


def test_the_debug_primary_only_header_sends_a_requests_reads_to_the_primary(measured, replayed_probe):
    # given (debug endpoints are on in the test settings)
    probe = replayed_probe()
    # when
    forced = Client().get(f"/replicas/debug/probes/{probe.pk}", headers={"X-Replicas-Primary-Only": "1"})
    plain = Client().get(f"/replicas/debug/probes/{probe.pk}")
    # then
    assert (forced.json()["server"], plain.json()["server"]) == ("primary", "replica")


def test_a_get_whose_replica_read_fails_is_answered_from_the_primary(measured, replayed_probe):
    # given a replica measured healthy that refuses connections from now on
    from django.db import connections

    probe = replayed_probe()
    replica = connections.settings["replica"]
    port = replica["PORT"]
    connections["replica"].close()
    replica["PORT"] = 25999
    try:
        # when a user reads
        response = Client().get(f"/replicas/debug/probes/{probe.pk}")
        with unit_of_work():
            routed_next = router.db_for_read(RoutingProbe)
    finally:
        replica["PORT"] = port
        connections["replica"].close()
    # then the request succeeded on the primary and the replica is skipped from now on
    assert response.status_code == 200
    assert response.json()["server"] == "primary"
    assert routed_next == PRIMARY_DB_ALIAS
