"""The audit of every grant (``LockGrant``): one module, one style, one statement per change.

Every write here is one raw SQL statement on the primary (``PRIMARY_DB_ALIAS``): these run on
the lock's hot path (each acquire, renewal and release), where an ORM compilation per call
would cost more than the statement. Opening a grant also issues its fencing token and closes
the rows whose holders silently expired, in the same statement, so the whole bookkeeping of a
grant is one round trip; it raises on a database error (a lock without a token is not safe).
The updates after it (renewed, closed, force-released) are best effort: they log a failure
and return ``False``, so a slow or failing database never makes a held lock look lost.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import DatabaseError, connections

from config.databases import PRIMARY_DB_ALIAS
from locking.fencing import UPSERT_FENCE
from locking.models import LockGrant

logger = logging.getLogger(__name__)

_OPEN_GRANT = f"""
WITH fence AS ({UPSERT_FENCE}),
expired AS (
    UPDATE locking_lockgrant SET outcome = 'expired', released = LEAST(expires, now())
    WHERE name = %(name)s AND outcome = 'held'
    RETURNING id
)
INSERT INTO locking_lockgrant
    (name, token, owner, server, pid, ttl_ms, acquired, renewals, expires, outcome, force_released_by,
     force_release_reason)
SELECT %(name)s, fence.token, %(owner)s, %(server)s, %(pid)s, %(ttl_ms)s, now(), 0,
       now() + make_interval(secs => %(ttl_ms)s / 1000.0), 'held', '', ''
FROM fence
RETURNING token, id
"""

_RENEWED = """
UPDATE locking_lockgrant
SET last_renewed = now(), expires = now() + make_interval(secs => %(ttl_ms)s / 1000.0),
    renewals = renewals + 1
WHERE id = %(id)s AND outcome = 'held'
"""

_CLOSED = """
UPDATE locking_lockgrant SET outcome = %(outcome)s, released = now() WHERE id = %(id)s AND outcome = 'held'
"""

_FORCE_RELEASED = """
UPDATE locking_lockgrant
SET outcome = 'force-released', released = now(),
    force_released_by = %(by)s, force_release_reason = %(reason)s
WHERE owner = ANY(%(owners)s) AND outcome = 'held'
"""


def grant_open(*, name: str, owner: str, server: str, pid: int, ttl_ms: int) -> tuple[int, int]:
    """Issue the next fencing token of ``name`` and record its grant; ``(token, grant id)``."""
    params: dict[str, Any] = {"name": name, "owner": owner, "server": server, "pid": pid, "ttl_ms": ttl_ms}
    with connections[PRIMARY_DB_ALIAS].cursor() as cursor:
        cursor.execute(_OPEN_GRANT, params)
        row = cursor.fetchone()
    assert row is not None  # RETURNING always yields the inserted row
    return int(row[0]), int(row[1])


def _best_effort(sql: str, params: Mapping[str, Any], *, lock: str, what: str) -> bool:
    try:
        with connections[PRIMARY_DB_ALIAS].cursor() as cursor:
            cursor.execute(sql, params)
    except DatabaseError as exc:
        logger.warning("lock %r: the audit could not record %s: %s", lock, what, exc)
        return False
    return True


def grant_renewed(*, grant_id: int, lock: str, ttl_ms: int) -> bool:
    return _best_effort(_RENEWED, {"id": grant_id, "ttl_ms": ttl_ms}, lock=lock, what="a renewal")


def grant_closed(*, grant_id: int, lock: str, outcome: LockGrant.Outcome) -> bool:
    """How a held grant ended (released, expired, lost); a grant closed already is left alone."""
    return _best_effort(_CLOSED, {"id": grant_id, "outcome": outcome.value}, lock=lock, what=outcome.value)


def grants_force_released(*, owners: Sequence[str], lock: str, by: str, reason: str = "") -> bool:
    params: dict[str, Any] = {"owners": list(owners), "by": by[:150], "reason": reason}
    return _best_effort(_FORCE_RELEASED, params, lock=lock, what=f"the force-release by {by}")
