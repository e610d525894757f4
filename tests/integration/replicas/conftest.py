"""Fixtures for the router tests: a measured replica and probe rows the replica has replayed."""

import time
from collections.abc import Callable

import pytest
from django.db import connections

from config.databases import PRIMARY_DB_ALIAS
from replicas.lsn import parse_lsn
from replicas.models import RoutingProbe
from replicas.monitor import Snapshot, monitor

# Lets a test read through the router from the real replica (see tests/conftest.py).
REPLICA_DB = pytest.mark.django_db(transaction=True, databases=["default", "replica"])


@pytest.fixture
def measured() -> Snapshot:
    """A fresh measurement in which the replica is healthy."""
    deadline = time.monotonic() + 10
    while True:
        snapshot = monitor.refresh()
        if snapshot.replicas["replica"].healthy or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert snapshot.replicas["replica"].healthy, snapshot
    return snapshot


def primary_lsn() -> int:
    with connections[PRIMARY_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_insert_lsn()::text")
        return parse_lsn(cursor.fetchone()[0])


def replica_replay_lsn() -> int:
    with connections["replica"].cursor() as cursor:
        cursor.execute("SELECT pg_last_wal_replay_lsn()::text")
        return parse_lsn(cursor.fetchone()[0])


def wait_replayed(lsn: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while replica_replay_lsn() < lsn:
        assert time.monotonic() < deadline, "the replica did not replay in time"
        time.sleep(0.01)


@pytest.fixture
def replayed_probe() -> Callable[[], RoutingProbe]:
    """Write a probe row on the primary (outside any test unit) and wait for the replica to have it."""

    def make() -> RoutingProbe:
        with connections[PRIMARY_DB_ALIAS].cursor() as cursor:
            cursor.execute(
                "INSERT INTO replicas_routingprobe (note, created_at) VALUES ('fixture', now()) RETURNING id"
            )
            probe_id = cursor.fetchone()[0]
        wait_replayed(primary_lsn())
        return RoutingProbe(pk=probe_id)

    return make
