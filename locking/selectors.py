"""Reads of the lock state: live from the Redis quorum, joined with the audit on the primary."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime

from config.databases import PRIMARY_DB_ALIAS
from locking.errors import LockUnavailable
from locking.models import LockGrant
from locking.names import parse_owner, validate_lock_name
from locking.quorum import get_quorum


@dataclass(frozen=True)
class ActiveLock:
    name: str
    owner: str
    server: str
    pid: int | None
    token: int | None  # None when acquired with fence=False
    acquired: datetime | None  # None when acquired with audit=False
    expires_in: float  # seconds, as the majority of nodes see it
    renewals: int | None
    grant_id: int | None


def is_job_lock_held(name: str) -> bool:
    """Whether a majority of nodes hold ``name`` for someone (this process included).

    Raises ``LockUnavailable`` when no quorum of nodes answered.
    """
    validate_lock_name(name)
    quorum = get_quorum()
    replies = quorum.inspect(name)
    if not quorum.answered_enough(replies):
        raise LockUnavailable(f"lock {name!r}: no quorum of lock nodes answered")
    return quorum.holder(replies) is not None


def get_active_job_locks() -> list[ActiveLock]:
    """Every lock a majority of nodes hold now, sorted by name, with its audit details.

    Lists keys with SCAN under ``LOCK_KEY_PREFIX``. Raises ``LockUnavailable`` when no quorum
    of nodes answered.
    """
    quorum = get_quorum()
    replies = quorum.scan()
    if not quorum.answered_enough(replies):
        raise LockUnavailable("no quorum of lock nodes answered")
    votes: Counter[tuple[str, str]] = Counter()
    pttls: dict[tuple[str, str], list[int]] = defaultdict(list)
    for reply in replies:
        if not reply.answered:
            continue
        for key, (owner, pttl) in reply.value.items():
            held = (key[len(quorum.key_prefix) :], owner)
            votes[held] += 1
            pttls[held].append(pttl)
    active = [held for held, count in votes.items() if count >= quorum.majority]
    grants = {
        grant.owner: grant
        for grant in LockGrant.objects.using(PRIMARY_DB_ALIAS).filter(
            owner__in=[owner for _, owner in active]
        )
    }
    locks = []
    for name, owner in sorted(active):
        remaining_ms = sorted(pttls[(name, owner)], reverse=True)[quorum.majority - 1]
        grant = grants.get(owner)
        server, pid = parse_owner(owner)
        locks.append(
            ActiveLock(
                name=name,
                owner=owner,
                server=grant.server if grant else server,
                pid=grant.pid if grant else pid,
                token=grant.token if grant else None,
                acquired=grant.acquired if grant else None,
                expires_in=remaining_ms / 1000,
                renewals=grant.renewals if grant else None,
                grant_id=grant.pk if grant else None,
            )
        )
    return locks
