"""PostgreSQL calls with a hard deadline: the probes (``health.checks``) and the replica monitor's
sample of the primary (``replicas.monitor``).

Django's connection cannot be bounded: ``connect_timeout`` covers connecting only, and
``statement_timeout`` is enforced by the server, so a paused server (SIGSTOP: the kernel
accepts the TCP connection, nothing answers) or PgBouncer waiting for a server that is down
hangs the query for as long as PgBouncer's ``query_wait_timeout``. PgBouncer also drops the
``options`` start-up parameter, so ``-c statement_timeout`` never reaches the server through it.

So each probe opens its own short-lived connection (psycopg ``connect_timeout``; psycopg's
floor is 2 s) and sends the query through libpq's asynchronous API, waiting on the socket with
``select`` until the deadline. A late answer is abandoned and the connection closed.
"""

from __future__ import annotations

import contextlib
import math
import select
import time
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import pq

from config import databases

Row = tuple[str | None, ...]


class QueryUnavailable(Exception):
    """No answer before the deadline; the message is a short reason (``unreachable``,
    ``timed out``, ``connection lost``, ``query failed``, ``query returned nothing``)."""


def connect(settings_dict: Mapping[str, Any], *, timeout: float) -> psycopg.Connection[Any]:
    """A fresh connection for one bounded call, from a Django ``DATABASES`` entry (``config.databases``)."""
    try:
        return databases.connect(
            settings_dict,
            connect_timeout=max(2, math.ceil(timeout)),
            application_name="health-probe",
            autocommit=True,
        )
    except psycopg.Error:
        raise QueryUnavailable("unreachable") from None


def fetch_rows(connection: psycopg.Connection[Any], sql: str, *, deadline: float) -> list[Row]:
    """Run one statement and return its rows as text, or raise once ``deadline`` passes."""
    pgconn = connection.pgconn
    pgconn.nonblocking = 1
    try:
        pgconn.send_query(sql.encode())
        while pgconn.flush():
            _wait(pgconn.socket, deadline, write=True)
        rows: list[Row] = []
        failed = False
        while True:
            pgconn.consume_input()
            while pgconn.is_busy():
                _wait(pgconn.socket, deadline, write=False)
                pgconn.consume_input()
            result = pgconn.get_result()
            if result is None:
                break
            if result.status == pq.ExecStatus.TUPLES_OK:
                rows.extend(
                    tuple(_text(result.get_value(row, col)) for col in range(result.nfields))
                    for row in range(result.ntuples)
                )
            elif result.status != pq.ExecStatus.COMMAND_OK:
                failed = True
    except psycopg.Error:
        raise QueryUnavailable("connection lost") from None
    if failed:
        raise QueryUnavailable("query failed")
    return rows


def fetch_one(connection: psycopg.Connection[Any], sql: str, *, deadline: float) -> Row:
    rows = fetch_rows(connection, sql, deadline=deadline)
    if not rows:
        raise QueryUnavailable("query returned nothing")
    return rows[0]


def close_quietly(connection: psycopg.Connection[Any]) -> None:
    with contextlib.suppress(psycopg.Error):
        connection.close()


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


def _wait(fileno: int, deadline: float, *, write: bool) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise QueryUnavailable("timed out")
    poller = select.poll()  # not select(): no FD_SETSIZE ceiling
    poller.register(fileno, select.POLLOUT if write else select.POLLIN)
    if not poller.poll(remaining * 1000):
        raise QueryUnavailable("timed out")
