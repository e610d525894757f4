"""One function per dependency: return what was observed, or raise a ``HealthProblem``.

Every call here is bounded by a driver-level timeout (see ``config.postgres`` for PostgreSQL;
Redis clients get ``socket_connect_timeout`` and ``socket_timeout`` and no retries), so a stopped
dependency and a paused one both end the check within the budget, and the worker is freed.
Messages are fixed sentences: a driver's exception text can name hosts, users or DSNs.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import psutil
import psycopg
import redis
from django.db import connections
from django.db.migrations.loader import MigrationLoader
from health_check import exceptions as library
from health_check.base import HealthCheck
from health_check.contrib.psutil import Disk, Memory
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import MasterNotFoundError

from config import broker_sentinel, postgres, redis_urls
from config.databases import PRIMARY_DB_ALIAS
from health.exceptions import ServiceUnavailable, ServiceWarning
from health.report import Observation
from replicas.selectors import HEALTHY, LAGGING, NOT_A_REPLICA, UNREACHABLE, replica_states

logger = logging.getLogger(__name__)


def _remaining(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise ServiceUnavailable("timed out")
    return remaining


def _elapsed_ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 2)


@contextmanager
def _database(alias: str, *, deadline: float) -> Iterator[psycopg.Connection[Any]]:
    try:
        connection = postgres.connect(connections.settings[alias], timeout=_remaining(deadline))
        try:
            yield connection
        finally:
            postgres.close_quietly(connection)
    except postgres.QueryUnavailable as error:
        raise ServiceUnavailable(str(error)) from None


# --- PostgreSQL ----------------------------------------------------------------------------


def database_response_time(*, alias: str = PRIMARY_DB_ALIAS, deadline: float) -> Observation:
    """Connect (through PgBouncer for the primary) and run ``SELECT 1``."""
    started = time.monotonic()
    with _database(alias, deadline=deadline) as connection:
        postgres.fetch_one(connection, "SELECT 1", deadline=deadline)
    return Observation(_elapsed_ms(started), "ms")


LEADER, REPLICA = "leader", "replica"


def database_role(*, alias: str, deadline: float) -> Observation:
    """The role of the PostgreSQL member this alias reaches now: ``leader`` or ``replica``
    (``pg_is_in_recovery()``). Roles move with a failover (ADR 0017); a warning when the primary
    alias reaches a standby (writes would fail) or a replica alias reaches the leader (its reads
    load the leader: the other member is down or still rejoining)."""
    with _database(alias, deadline=deadline) as connection:
        (in_recovery,) = postgres.fetch_one(connection, "SELECT pg_is_in_recovery()", deadline=deadline)
    role = REPLICA if in_recovery == "t" else LEADER  # rows come back as text
    observed = Observation(role, "role")
    expected = LEADER if alias == PRIMARY_DB_ALIAS else REPLICA
    if role != expected:
        raise ServiceWarning(f"reaches the {role}, not a {expected}", observed=observed)
    return observed


def replica_lag(*, alias: str, deadline: float) -> Observation:
    """The replica's lag in ms as the router measured it (``replicas.selectors``): the probe shows
    what routing decides on, so the two can never disagree. Unreachable is a failure (of a
    non-critical check); lagging, not in recovery or not measured yet is a warning."""
    _remaining(deadline)
    state = next(state for state in replica_states() if state.alias == alias)
    observed = Observation(None if state.lag_ms is None else round(state.lag_ms, 1), "ms")
    if state.status == UNREACHABLE:
        raise ServiceUnavailable("unreachable")
    if state.status == LAGGING:
        raise ServiceWarning("lagging", observed=observed)
    if state.status == NOT_A_REPLICA:
        raise ServiceWarning("not a standby")
    if state.status != HEALTHY:
        raise ServiceWarning("lag not measured yet")
    return observed


@cache
def _migration_leaves() -> dict[tuple[str, str], frozenset[tuple[str, str]]]:
    """The newest migration of every app (from disk, once per process), with what it replaces."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    return {
        leaf: frozenset((leaf[0], name) for name in getattr(loader.disk_migrations[leaf], "replaces", ()))
        if leaf in loader.disk_migrations
        else frozenset()
        for leaf in loader.graph.leaf_nodes()
    }


def migrations_pending(*, deadline: float) -> Observation:
    leaves = _migration_leaves()
    with _database(PRIMARY_DB_ALIAS, deadline=deadline) as connection:
        rows = postgres.fetch_rows(connection, "SELECT app, name FROM django_migrations", deadline=deadline)
    applied = {(app, name) for app, name in rows}
    pending = sum(
        1
        for leaf, replaced in leaves.items()
        if leaf not in applied and not (replaced and replaced <= applied)
    )
    observed = Observation(pending, "migrations")
    if pending:
        raise ServiceUnavailable("migrations not applied", observed=observed)
    return observed


# --- Redis ------------------------------------------------------------------------------------

_clients: dict[tuple[int, str, float], redis.Redis] = {}
_clients_lock = threading.Lock()


def _redis_client(url: str, *, timeout: float) -> redis.Redis:
    """A client of the node, or (``redis+sentinel://``) of the master Sentinel names now."""
    key = (os.getpid(), url, timeout)  # never reuse a pool across a fork
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = redis_urls.redis_client(
                url,
                socket_connect_timeout=timeout,
                socket_timeout=timeout,
                retry=Retry(NoBackoff(), 0),  # redis-py retries 3 times by default
                health_check_interval=0,
            )
            _clients[key] = client
        return client


def redis_response_time(*, url: str, timeout: float, deadline: float) -> Observation:
    _remaining(deadline)
    started = time.monotonic()
    try:
        _redis_client(url, timeout=timeout).ping()
    except MasterNotFoundError:
        raise ServiceUnavailable("no master of that name (Sentinel)") from None
    except redis.TimeoutError:
        raise ServiceUnavailable("timed out") from None
    except redis.ConnectionError:
        raise ServiceUnavailable("unreachable") from None
    except redis.RedisError:
        raise ServiceUnavailable("error") from None
    return Observation(_elapsed_ms(started), "ms")


def broker_master(*, url: str, timeout: float, deadline: float) -> Observation:
    """Where the broker's master is, as its Sentinels name it now (ADR 0019); a warning when it
    has no replica in sync (one more loss is an outage)."""
    state = broker_sentinel.broker_state(url, timeout=min(timeout, _remaining(deadline)))
    if state is None:
        raise ServiceUnavailable("no Sentinel names the master")
    observed = Observation(state.master, "address")
    if state.replicas < 1:
        raise ServiceWarning("no replica in sync", observed=observed)
    return observed


# --- Celery -----------------------------------------------------------------------------------


def celery_workers(*, timeout: float, deadline: float) -> Observation:
    """How many workers answer a broadcast ping within ``timeout``."""
    from config.celery import app

    wait = min(timeout, _remaining(deadline) - 0.2)
    transport = {
        "socket_connect_timeout": wait,
        "socket_timeout": wait,
        "max_retries": 0,
        # Closing the channel waits for the pending BRPOP, which lasts this long (1 s by default).
        "polling_interval": 0.05,
    }
    try:
        with app.connection_for_write(connect_timeout=wait, transport_options=transport) as connection:
            replies = app.control.ping(timeout=wait, connection=connection)
    except Exception:  # kombu raises many types; the broker's own check says which way it is down
        logger.warning("Celery ping failed", exc_info=True)
        raise ServiceUnavailable("broker unreachable") from None
    observed = Observation(len(replies or []), "workers")
    if not replies:
        raise ServiceWarning("no worker answered", observed=observed)
    return observed


# --- the host: django-health-check's psutil checks, wrapped -----------------------------------


def _run_library_check(check: HealthCheck, observed: Observation) -> Observation:
    """Run a django-health-check check synchronously and translate its verdict."""
    try:
        check.run()  # Disk and Memory are synchronous
    except library.ServiceWarning:
        raise ServiceWarning("over threshold", observed=observed) from None
    except library.HealthCheckException:
        raise ServiceUnavailable("unavailable", observed=observed) from None
    return observed


def disk_utilization(*, path: str, max_percent: float, deadline: float) -> Observation:
    observed = Observation(psutil.disk_usage(path).percent, "percent")
    return _run_library_check(Disk(path=path, max_disk_usage_percent=max_percent), observed)


def memory_utilization(*, max_percent: float, deadline: float) -> Observation:
    observed = Observation(psutil.virtual_memory().percent, "percent")
    return _run_library_check(Memory(max_memory_usage_percent=max_percent), observed)
