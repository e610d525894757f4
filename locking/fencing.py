"""Fencing tokens: PostgreSQL makes a lock holder's writes conditional on still being the newest.

Redis alone cannot stop a holder that was paused (GC, SIGSTOP, a slow disk) past its TTL from
writing after a newer holder started. So every grant gets a token from PostgreSQL that only
goes up per lock name, and ``fenced(lock)`` runs a block of writes in ONE transaction that
first locks the name's fence row (``SELECT ... FOR UPDATE``) and checks the token is still the
newest. A newer grant must update that same row to get its token, so it waits for the block to
commit; if it got there first, the block raises ``StaleLockError`` and rolls back.

Safe under PgBouncer transaction mode: one statement to issue a token, one transaction to
fence, no session state and no session advisory locks. Always on the primary (``PRIMARY_DB_ALIAS``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from django.db import connections, transaction

from locking.errors import StaleLockError
from replicas import PRIMARY_DB_ALIAS

if TYPE_CHECKING:
    from locking.services import JobLock


_UPSERT_FENCE = """
INSERT INTO locking_lockfence (name, token, updated) VALUES (%(name)s, 1, now())
ON CONFLICT (name) DO UPDATE SET token = locking_lockfence.token + 1, updated = now()
RETURNING token
"""

# The fence, the audit row, and the closing of rows whose holder silently expired: one
# statement, so the whole bookkeeping of a grant costs one round trip.
_NEXT_TOKEN_AND_GRANT = f"""
WITH fence AS ({_UPSERT_FENCE}),
expired AS (
    UPDATE locking_lockgrant SET outcome = 'expired', released = LEAST(expires, now())
    WHERE name = %(name)s AND outcome = 'held'
    RETURNING id
)
INSERT INTO locking_lockgrant
    (name, token, owner, server, pid, ttl_ms, acquired, renewals, expires, outcome, force_released_by)
SELECT %(name)s, fence.token, %(owner)s, %(server)s, %(pid)s, %(ttl_ms)s, now(), 0,
       now() + make_interval(secs => %(ttl_ms)s / 1000.0), 'held', ''
FROM fence
RETURNING token, id
"""

_ADVANCE = """
UPDATE locking_lockfence SET token = token + 1, updated = now() WHERE name = %(name)s RETURNING token
"""

# The session timeout (SET LOCAL, so it ends with the transaction) makes PostgreSQL end the
# transaction of a holder that is paused inside a fenced block, instead of keeping the fence
# row locked and the next holder waiting forever.
_CHECK = """
SELECT token, set_config('idle_in_transaction_session_timeout', %(idle_ms)s, true)
FROM locking_lockfence WHERE name = %(name)s FOR UPDATE
"""


def issue_token(*, name: str) -> int:
    with connections[PRIMARY_DB_ALIAS].cursor() as cursor:
        cursor.execute(_UPSERT_FENCE, {"name": name})
        row = cursor.fetchone()
    assert row is not None  # RETURNING always yields the upserted row
    return int(row[0])


def issue_token_and_grant(*, name: str, owner: str, server: str, pid: int, ttl_ms: int) -> tuple[int, int]:
    """Return ``(token, grant id)`` for a new grant of ``name``."""
    params: dict[str, str | int] = {
        "name": name,
        "owner": owner,
        "server": server,
        "pid": pid,
        "ttl_ms": ttl_ms,
    }
    with connections[PRIMARY_DB_ALIAS].cursor() as cursor:
        cursor.execute(_NEXT_TOKEN_AND_GRANT, params)
        row = cursor.fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def advance_token(*, name: str) -> int | None:
    """Make every token issued so far for ``name`` stale; ``None`` if it never had one."""
    with connections[PRIMARY_DB_ALIAS].cursor() as cursor:
        cursor.execute(_ADVANCE, {"name": name})
        row = cursor.fetchone()
    return None if row is None else int(row[0])


@contextmanager
def fenced(lock: JobLock) -> Iterator[None]:
    """Run the block's database writes only if ``lock`` still has the newest token.

    Raises ``LockLost`` if the lock is already known lost, ``StaleLockError`` (rolling back)
    if a newer grant or a force-release advanced the token. Use the primary (``PRIMARY_DB_ALIAS``) for
    the protected writes; writes to other connections are not covered.
    """
    if lock.token is None:
        raise ValueError(f"lock {lock.name!r} was acquired with fence=False and has no fencing token")
    lock.ensure_held()
    idle_ms = str(max(1000, int(lock.ttl * 1000)))
    with transaction.atomic(using=PRIMARY_DB_ALIAS):
        with connections[PRIMARY_DB_ALIAS].cursor() as cursor:
            cursor.execute(_CHECK, {"name": lock.name, "idle_ms": idle_ms})
            row = cursor.fetchone()
        newest = None if row is None else int(row[0])
        if newest != lock.token:
            raise StaleLockError(
                f"lock {lock.name!r}: this holder has fencing token {lock.token}, the newest is {newest}"
            )
        yield
