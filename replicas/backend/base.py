"""A new connection waits a bounded time for a database that is failing over.

While Patroni promotes the replica (about ten seconds after the leader dies, ADR 0017), HAProxy
has no primary to send connections to and PgBouncer, after one failed server login, refuses its
clients at once ("pgbouncer cannot connect to server"). A request that needs a new connection in
that window retries the *connection* until ``DB_FAILOVER_WAIT_SECONDS`` have passed, then fails
as before. Nothing the application asked for is ever sent twice: the retried step is opening the
connection and one ``SELECT 1`` (a connection through PgBouncer is only usable once PgBouncer
reached a server), never a statement that may have committed. A statement already running when
the leader died fails with its request, as it must: it may have committed.

Connections that Django keeps between requests (``CONN_MAX_AGE``) are checked at the start of
each request (``CONN_HEALTH_CHECKS``); a dead one is closed there, so the request's first query
opens a new connection, which waits here.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import psycopg
from django.conf import settings
from django_prometheus.db.backends.postgresql import base

from config.databases import PRIMARY_DB_ALIAS

logger = logging.getLogger(__name__)

# Between two attempts: short next to a failover, long enough not to hammer a pooler that
# answers at once.
RETRY_PAUSE_SECONDS = 0.25


def wait_seconds(alias: str) -> float:
    """Only the primary waits: a read that finds no replica goes to the primary at once."""
    if alias != PRIMARY_DB_ALIAS:
        return 0.0
    return float(getattr(settings, "DB_FAILOVER_WAIT_SECONDS", 0.0))


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        deadline = time.monotonic() + wait_seconds(self.alias)
        attempts = 0
        while True:
            attempts += 1
            try:
                connection = super().get_new_connection(conn_params)
                _probe(connection)
            except psycopg.OperationalError as error:
                if time.monotonic() + RETRY_PAUSE_SECONDS >= deadline:
                    raise
                if attempts == 1:
                    first_line = (str(error).strip().splitlines() or [""])[0]
                    logger.warning(
                        "database %s not reachable, waiting up to %.1f s for it: %s",
                        self.alias, wait_seconds(self.alias), first_line,
                    )  # fmt: skip
                time.sleep(RETRY_PAUSE_SECONDS)
                continue
            if attempts > 1:
                logger.warning("database %s reachable again after %d attempts", self.alias, attempts)
            return connection


def _probe(connection: psycopg.Connection[Any]) -> None:
    """One round trip that needs a server behind any pooler; leaves no transaction open."""
    try:
        connection.execute("SELECT 1")
        connection.rollback()
    except psycopg.OperationalError:
        connection.close()
        raise
