"""Fixtures for the router tests: a measured replica and probe rows the replica has replayed."""

from collections.abc import Callable

import pytest
from django.db import connections

from config.databases import PRIMARY_DB_ALIAS
from replicas.lsn import parse_lsn
from replicas.models import RoutingProbe
from replicas.monitor import Snapshot, monitor
from tests.support import wait_until

# Lets a test read through the router from the real replica (see tests/conftest.py).
REPLICA_DB = pytest.mark.django_db(transaction=True, databases=[PRIMARY_DB_ALIAS, "replica"])


@pytest.fixture
def measured() -> Snapshot:
    """A fresh measurement in which the replica is healthy."""
    seen: list[Snapshot] = []

    def healthy() -> Snapshot | None:
        seen.append(monitor.refresh())
        return seen[-1] if seen[-1].replicas["replica"].healthy else None

    return wait_until(
        healthy, timeout=10, interval=0.2, message=lambda: f"the replica is not healthy: {seen[-1]}"
    )


def primary_lsn() -> int:
    with connections[PRIMARY_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_insert_lsn()::text")
        return parse_lsn(cursor.fetchone()[0])


def replica_replay_lsn() -> int:
    with connections["replica"].cursor() as cursor:
        cursor.execute("SELECT pg_last_wal_replay_lsn()::text")
        return parse_lsn(cursor.fetchone()[0])


def wait_replayed(lsn: int, timeout: float = 10.0) -> None:
    wait_until(
        lambda: replica_replay_lsn() >= lsn,
        timeout=timeout,
        interval=0.01,
        message="the replica did not replay in time",
    )


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
