"""Fencing tokens: PostgreSQL makes a lock holder's writes conditional on still being the newest.

Redis alone cannot stop a holder that was paused (GC, SIGSTOP, a slow disk) past its TTL from
writing after a newer holder started. So every grant gets a token from PostgreSQL that only
goes up per lock name, and ``fenced(...)`` runs a block of writes in ONE transaction that
first locks the name's fence row (``SELECT ... FOR UPDATE``) and checks the token is still the
newest. A newer grant must update that same row to get its token, so it waits for the block to
commit; if it got there first, the block raises ``StaleLockError`` and rolls back.

The row also names the grant its token went to (the owner id), and the check compares both: a
token can repeat when an asynchronous failover loses the primary's last increment (the new
primary hands out N again), but the owner ids of two grants never match, so the older holder
of N is refused all the same.

Safe under PgBouncer transaction mode: one statement to issue a token, one transaction to
fence, no session state and no session advisory locks. Always on the primary
(``PRIMARY_DB_ALIAS``). This module knows tokens, not locks: ``JobLock.fenced()`` checks the
lock is still held and calls ``fenced`` with its name, token and TTL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections, transaction

from config.databases import PRIMARY_DB_ALIAS
from locking.errors import StaleLockError

# Shared with the audit's one-statement grant (locking/audit.py).
UPSERT_FENCE = """
INSERT INTO locking_lockfence (name, token, owner, updated) VALUES (%(name)s, 1, %(owner)s, now())
ON CONFLICT (name) DO UPDATE
SET token = locking_lockfence.token + 1, owner = EXCLUDED.owner, updated = now()
RETURNING token
"""

# A force-release: the token moves on and the row names no holder, so every grant so far is stale.
_ADVANCE = """
UPDATE locking_lockfence SET token = token + 1, owner = '', updated = now() WHERE name = %(name)s
RETURNING token
"""

# The session timeout (SET LOCAL, so it ends with the transaction) makes PostgreSQL end the
# transaction of a holder that is paused inside a fenced block, instead of keeping the fence
# row locked and the next holder waiting forever.
_CHECK = """
SELECT token, owner, set_config('idle_in_transaction_session_timeout', %(idle_ms)s, true)
FROM locking_lockfence WHERE name = %(name)s FOR UPDATE
"""


def issue_token(*, name: str, owner: str) -> int:
    """The next token of ``name``, issued to the grant ``owner``."""
    with connections[PRIMARY_DB_ALIAS].cursor() as cursor:
        cursor.execute(UPSERT_FENCE, {"name": name, "owner": owner})
        row = cursor.fetchone()
    assert row is not None  # RETURNING always yields the upserted row
    return int(row[0])


def advance_token(*, name: str) -> int | None:
    """Make every token issued so far for ``name`` stale; ``None`` if it never had one."""
    with connections[PRIMARY_DB_ALIAS].cursor() as cursor:
        cursor.execute(_ADVANCE, {"name": name})
        row = cursor.fetchone()
    return None if row is None else int(row[0])


@contextmanager
def fenced(*, name: str, token: int, owner: str, ttl_ms: int) -> Iterator[None]:
    """Run the block's database writes only if ``token``, issued to ``owner``, is still the
    newest for ``name``.

    Raises ``StaleLockError`` (rolling back) if a newer grant or a force-release advanced the
    token, or the same token was issued again to another grant. Use the primary
    (``PRIMARY_DB_ALIAS``) for the protected writes; writes to other connections are not covered.
    """
    idle_ms = str(max(1000, ttl_ms))
    with transaction.atomic(using=PRIMARY_DB_ALIAS):
        with connections[PRIMARY_DB_ALIAS].cursor() as cursor:
            cursor.execute(_CHECK, {"name": name, "idle_ms": idle_ms})
            row = cursor.fetchone()
        newest, holder = (None, None) if row is None else (int(row[0]), row[1])
        if newest != token:
            raise StaleLockError(
                f"lock {name!r}: this holder has fencing token {token}, the newest is {newest}"
            )
        if holder != owner:
            raise StaleLockError(
                f"lock {name!r}: fencing token {token} was issued again, to another holder"
                " (the token repeated, e.g. after a failover lost the last increment)"
            )
        yield
