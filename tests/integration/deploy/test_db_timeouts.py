"""The app role's statement and lock timeouts: set by migrate, enforced by PostgreSQL."""

import time

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from config.databases import PRIMARY_DB_ALIAS
from deploy.database import role_timeouts_apply

pytestmark = pytest.mark.integration


def _role_settings(cursor) -> set[str]:
    cursor.execute(
        "SELECT unnest(setconfig) FROM pg_db_role_setting "
        "WHERE setrole = (SELECT oid FROM pg_roles WHERE rolname = current_user) "
        "AND setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    return {row[0] for row in cursor.fetchall()}


def test_migrate_set_the_configured_timeouts_on_the_role(db):
    with connection.cursor() as cursor:
        found = _role_settings(cursor)
    assert f"statement_timeout={settings.DB_STATEMENT_TIMEOUT_MS}" in found
    assert f"lock_timeout={settings.DB_LOCK_TIMEOUT_MS}" in found


@pytest.fixture
def short_timeouts(db, cluster_settings):
    """The test database's role timeouts made short, on the real primary; restored afterwards."""
    name = connection.settings_dict["NAME"]

    def connect() -> psycopg.Connection:
        # A new server session straight to the primary: PgBouncer could hand out one opened
        # before the change, which keeps the values it started with.
        return psycopg.connect(
            host="127.0.0.1",
            port=cluster_settings.pg_primary_port,
            dbname=name,
            user=str(settings.DATABASES[PRIMARY_DB_ALIAS]["USER"]),
            password=str(settings.DATABASES[PRIMARY_DB_ALIAS]["PASSWORD"]),
            autocommit=True,
            connect_timeout=5,
        )

    with connect() as admin:
        role_timeouts_apply(admin.cursor(), database=name, statement_timeout_ms=300, lock_timeout_ms=200)
    try:
        yield connect
    finally:
        with connect() as admin:
            role_timeouts_apply(admin.cursor(), database=name)


def test_a_slow_query_is_cancelled_by_the_statement_timeout(short_timeouts):
    with short_timeouts() as conn:
        started = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled, match="statement timeout"):
            conn.execute("SELECT pg_sleep(5)")
        assert time.monotonic() - started < 3


def test_a_lock_wait_gives_up_after_the_lock_timeout(short_timeouts):
    with short_timeouts() as holder, short_timeouts() as waiter:
        holder.autocommit = False
        holder.execute("SELECT pg_advisory_xact_lock(724001)")
        started = time.monotonic()
        with pytest.raises(psycopg.errors.LockNotAvailable, match="lock timeout"):
            waiter.execute("SELECT pg_advisory_xact_lock(724001)")
        assert time.monotonic() - started < 3
        holder.rollback()


def test_a_timeout_must_be_milliseconds():
    with pytest.raises(ValueError, match="DB_LOCK_TIMEOUT_MS"):
        role_timeouts_apply(None, database="x", statement_timeout_ms=1, lock_timeout_ms=-1)  # type: ignore[arg-type]
