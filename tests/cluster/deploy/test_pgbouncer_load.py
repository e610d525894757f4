"""1,000 database clients: through PgBouncer they all get served by 30 server connections;
straight to PostgreSQL (max_connections=200) most are refused. The problem PgBouncer solves.

The load runs against a PgBouncer of our own, rendered from the same template with the same
pool sizes as the cluster's (the first test checks the cluster's runs with those sizes), because
saturating the shared PgBouncer's 1,000 client slots would refuse the app servers' connections
and every other test's. Its pool is for a database of its own, so the primary's
``pg_stat_activity`` counts exactly its server connections.
"""

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from deploy.local import cluster
from deploy.local.host import free_port, raise_file_limit
from deploy.pgbouncer.render import PgBouncerValues, render_pgbouncer_ini
from tests.integration.deploy.pgbouncer_process import (
    pgbouncer_log,
    postgres_readable_dir,
    running_pgbouncer,
)

pytestmark = pytest.mark.cluster

CLIENTS = 1000
PROBE_DB = "deploy_pool_probe"
APP_NAME = "deploy-load-test"


def _connect_kwargs(cfg: cluster.Settings, port: int, dbname: str = PROBE_DB) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": port,
        "dbname": dbname,
        "user": cfg.db_user,
        "password": cfg.db_password,
        "autocommit": True,
        "prepare_threshold": None,
        "connect_timeout": 15,
        "application_name": APP_NAME,
    }


@pytest.fixture(scope="module")
def probe_database(cluster_settings: cluster.Settings) -> Iterator[str]:
    """A database only these tests use, created and dropped straight on the primary."""
    cfg = cluster_settings
    with psycopg.connect(**_connect_kwargs(cfg, cfg.pg_primary_port, dbname=cfg.db_name)) as primary:
        primary.execute(f'DROP DATABASE IF EXISTS "{PROBE_DB}" WITH (FORCE)')
        primary.execute(f'CREATE DATABASE "{PROBE_DB}"')
        try:
            yield PROBE_DB
        finally:
            primary.execute(f'DROP DATABASE IF EXISTS "{PROBE_DB}" WITH (FORCE)')


@pytest.fixture(scope="module")
def many_files() -> None:
    # A thousand sockets (and PgBouncer, which inherits the limit) need more than 1,024 descriptors.
    raise_file_limit(16384)


@pytest.fixture(scope="module")
def pgbouncer_port(cluster_settings, probe_database, many_files) -> Iterator[int]:
    """A PgBouncer rendered with the deployment's defaults (pool 30, 1,000 clients) for the probe DB."""
    cfg = cluster_settings
    port = free_port()
    with postgres_readable_dir() as folder:
        auth_file = cluster.write_pgbouncer_auth_file(cfg, folder / "userlist.txt")
        values = PgBouncerValues(
            db_name=probe_database,
            primary_host="127.0.0.1",
            primary_port=cfg.pg_primary_port,
            replica_host="127.0.0.1",
            replica_port=cfg.pg_replica_port,
            listen_addr="127.0.0.1",
            listen_port=port,
            auth_file=auth_file,
        )
        ini = render_pgbouncer_ini(values, folder / "pgbouncer.ini")
        with running_pgbouncer(ini, port=port, folder=folder):
            yield port
        print(pgbouncer_log(folder)[-2000:])


class ServerConnectionSampler(threading.Thread):
    """Counts the primary's backends for the probe database every few milliseconds."""

    def __init__(self, cfg: cluster.Settings) -> None:
        super().__init__(daemon=True)
        self.cfg = cfg
        self.peak = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        kwargs = _connect_kwargs(self.cfg, self.cfg.pg_primary_port, dbname=self.cfg.db_name)
        with psycopg.connect(**{**kwargs, "application_name": "deploy-load-sampler"}) as primary:
            while not self.stopped.is_set():
                row = primary.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (PROBE_DB,)
                ).fetchone()
                self.peak = max(self.peak, row[0] if row else 0)
                self.stopped.wait(0.02)


async def _open(count: int, kwargs: dict[str, Any], opened: list, errors: list[str]) -> None:
    gate = asyncio.Semaphore(100)  # bounded bursts: the listen backlog, not the limit, is not under test

    async def one() -> None:
        async with gate:
            try:
                opened.append(await psycopg.AsyncConnection.connect(**kwargs))
            except psycopg.OperationalError as error:
                errors.append(str(error))

    await asyncio.gather(*(one() for _ in range(count)))


async def _close(connections: list) -> None:
    await asyncio.gather(*(connection.close() for connection in connections), return_exceptions=True)


async def _wait_for_free_slots(cfg: cluster.Settings, timeout: float = 10.0) -> None:
    """Hand the primary back to the other tests only once it takes a connection again."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        try:
            connection = await psycopg.AsyncConnection.connect(**_connect_kwargs(cfg, cfg.pg_primary_port))
        except psycopg.OperationalError:
            await asyncio.sleep(0.1)
            continue
        await connection.close()
        return


@pytest.mark.parametrize("which", [0, 1], ids=["pgbouncer", "pgbouncer2"])
def test_the_cluster_pgbouncer_runs_the_pool_sizes_under_test(cluster_settings, which):
    # each of the two PgBouncers the app lists (ADR 0018)
    cfg = cluster_settings
    port = cfg.pgbouncer_ports[which]
    console = {**_connect_kwargs(cfg, port, dbname="pgbouncer"), "user": "pgbouncer_admin"}
    with psycopg.connect(**console) as admin:
        config = {row[0]: row[1] for row in admin.execute("SHOW CONFIG").fetchall()}
    assert config["pool_mode"] == "transaction"
    assert (config["default_pool_size"], config["max_client_conn"], config["max_db_connections"]) == (
        "30",
        "1000",
        "30",
    )


def test_a_thousand_clients_through_pgbouncer_all_succeed_on_at_most_30_server_connections(
    cluster_settings, pgbouncer_port
):
    # given
    sampler = ServerConnectionSampler(cluster_settings)
    opened: list[psycopg.AsyncConnection] = []
    errors: list[str] = []

    async def scenario() -> list[object]:
        try:
            await _open(CLIENTS, _connect_kwargs(cluster_settings, pgbouncer_port), opened, errors)
            if errors:
                return []
            # when: every client runs a query at the same moment
            sampler.start()

            async def query(connection: psycopg.AsyncConnection) -> object:
                cursor = await connection.execute("SELECT pg_sleep(0.05), 1")
                row = await cursor.fetchone()
                return row[1] if row else None

            return await asyncio.gather(*(query(connection) for connection in opened), return_exceptions=True)
        finally:
            sampler.stopped.set()
            await _close(opened)

    results = asyncio.run(scenario())
    if sampler.is_alive():
        sampler.join(timeout=5)
    # then
    assert errors == []
    assert len(opened) == CLIENTS
    assert results == [1] * CLIENTS
    assert 0 < sampler.peak <= 30, sampler.peak


def test_the_client_after_the_thousandth_gets_a_clear_refusal(cluster_settings, pgbouncer_port):
    opened: list[psycopg.AsyncConnection] = []
    errors: list[str] = []
    refusal: list[str] = []

    async def scenario() -> None:
        try:
            # given
            await _open(CLIENTS, _connect_kwargs(cluster_settings, pgbouncer_port), opened, errors)
            # when
            await _open(1, _connect_kwargs(cluster_settings, pgbouncer_port), opened, refusal)
        finally:
            await _close(opened)

    asyncio.run(scenario())
    # then
    assert errors == []
    assert len(refusal) == 1
    assert "no more connections allowed (max_client_conn)" in refusal[0]


def test_the_same_thousand_clients_straight_to_postgresql_are_mostly_refused(
    cluster_settings, probe_database, many_files
):
    opened: list[psycopg.AsyncConnection] = []
    errors: list[str] = []

    async def scenario() -> None:
        try:
            # when
            await _open(
                CLIENTS, _connect_kwargs(cluster_settings, cluster_settings.pg_primary_port), opened, errors
            )
        finally:
            await _close(opened)
            await _wait_for_free_slots(cluster_settings)

    asyncio.run(scenario())
    # then: max_connections is 200, so at least 800 of the 1,000 are refused, each saying why
    assert len(opened) + len(errors) == CLIENTS
    assert len(errors) >= CLIENTS - 200
    too_many = ("too many clients", "remaining connection slots are reserved")
    assert all(any(reason in error for reason in too_many) for error in errors), errors[:3]
