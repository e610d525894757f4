"""Noticing writes on the primary connection, and the primary's WAL position after them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper

from config.databases import PRIMARY_DB_ALIAS
from replicas.context import RoutingState, note_write
from replicas.lsn import parse_lsn

logger = logging.getLogger(__name__)

# Statements that change data. Transaction control (SAVEPOINT, RELEASE, ROLLBACK) and SELECT
# ... FOR UPDATE do not; a CTE (WITH) may, so it counts.
_WRITE_PREFIXES = (
    "INSERT", "UPDATE", "DELETE", "MERGE", "WITH", "COPY", "CALL", "DO ", "TRUNCATE",
    "CREATE", "ALTER", "DROP", "GRANT", "REVOKE", "COMMENT",
)  # fmt: skip


def is_write(sql: str) -> bool:
    return sql.lstrip()[:8].upper().startswith(_WRITE_PREFIXES)


def notice_writes(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    """Execute wrapper on the primary connection: a write marks the current unit of work.

    Raw SQL through ``connection.cursor()`` counts too, which a router hook would miss.
    """
    result = execute(sql, params, many, context)
    if isinstance(sql, str) and is_write(sql):
        note_write()
    return result


def install_write_detection(connection: BaseDatabaseWrapper) -> None:
    """Put :func:`notice_writes` first among the primary connection's wrappers (once).

    First, because ``connection.execute_wrapper()`` pops the *last* wrapper on exit: appended
    inside someone's ``with connection.execute_wrapper(...)``, ours would be the one removed.
    """
    if connection.alias == PRIMARY_DB_ALIAS and notice_writes not in connection.execute_wrappers:
        connection.execute_wrappers.insert(0, notice_writes)


def primary_lsn_after_writes(state: RoutingState) -> int | None:
    """The primary's WAL insert position now, read once per batch of writes; None inside a transaction
    (the commit is still to come, so no position yet covers it) or if the primary cannot say.

    The insert position, not the flush position: with ``synchronous_commit = off`` a commit
    returns before its WAL is flushed, and only the insert position is sure to cover it.
    """
    if not state.lsn_dirty and state.written_lsn is not None:
        return state.written_lsn
    connection = connections[PRIMARY_DB_ALIAS]
    if connection.in_atomic_block:
        return None
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_insert_lsn()::text")
            row = cursor.fetchone()
    except DatabaseError:
        logger.warning("could not read the primary's WAL position after a write", exc_info=True)
        return None
    if not row:
        return None
    state.written_lsn = parse_lsn(row[0])
    state.lsn_dirty = False
    return state.written_lsn
