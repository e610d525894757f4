"""Statement and lock timeouts for the app's database role, set on the role itself.

PgBouncer in transaction mode drops the ``options`` startup parameter and hands sessions to
other clients, so neither a connection option nor a session ``SET`` can carry them. A role
setting can: PostgreSQL applies ``ALTER ROLE ... IN DATABASE ... SET`` at the start of every
server session, so every connection PgBouncer opens (and the replica, which replays the
catalog) gets them. A role may set its own defaults without superuser rights.

``migrate`` applies them (a ``post_migrate`` receiver, deploy/apps.py) from
``DB_STATEMENT_TIMEOUT_MS`` and ``DB_LOCK_TIMEOUT_MS``, so every deploy re-applies the current
values. Server connections PgBouncer already holds keep the old values until they are
replaced (``server_lifetime``); ``RECONNECT`` on its console replaces them at once.
"""

from typing import Any, Protocol

from django.conf import settings


class _Cursor(Protocol):
    def execute(self, sql: Any, params: Any = ..., /) -> Any: ...


def role_timeout_statements(*, database: str, statement_timeout_ms: int, lock_timeout_ms: int) -> list[str]:
    """The SQL that makes the current role's sessions in ``database`` use these timeouts (0: none)."""
    for name, value in (
        ("DB_STATEMENT_TIMEOUT_MS", statement_timeout_ms),
        ("DB_LOCK_TIMEOUT_MS", lock_timeout_ms),
    ):
        if not isinstance(value, int) or value < 0:
            raise ValueError(f"{name}={value!r} is not a number of milliseconds")
    quoted = '"' + database.replace('"', '""') + '"'
    return [
        f"ALTER ROLE CURRENT_USER IN DATABASE {quoted} SET statement_timeout = {statement_timeout_ms}",
        f"ALTER ROLE CURRENT_USER IN DATABASE {quoted} SET lock_timeout = {lock_timeout_ms}",
    ]


def role_timeouts_apply(
    cursor: _Cursor,
    *,
    database: str,
    statement_timeout_ms: int | None = None,
    lock_timeout_ms: int | None = None,
) -> None:
    """Set the timeouts on the current role in ``database`` (the settings' values by default)."""
    statements = role_timeout_statements(
        database=database,
        statement_timeout_ms=settings.DB_STATEMENT_TIMEOUT_MS
        if statement_timeout_ms is None
        else statement_timeout_ms,
        lock_timeout_ms=settings.DB_LOCK_TIMEOUT_MS if lock_timeout_ms is None else lock_timeout_ms,
    )
    for statement in statements:
        cursor.execute(statement)


def apply_after_migrate(*, using: str, **kwargs: Any) -> None:
    """``post_migrate`` receiver: the migrated database's role gets the configured timeouts.

    Sent once per app with models; the statements are idempotent and cheap.
    """
    from django.db import connections

    connection = connections[using]
    with connection.cursor() as cursor:
        role_timeouts_apply(cursor, database=str(connection.settings_dict["NAME"]))
