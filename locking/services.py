"""Distributed job locks: a Redis quorum for liveness, PostgreSQL fencing tokens for safety.

What a lock protects: one run of a job at a time across every server. Acquire it, do the
work, and wrap the writes that must not happen twice in ``lock.fenced()``::

    lock = acquire_job_lock("recurring-messages", ttl=30)
    if lock is None:
        return  # another server is running it
    try:
        with lock.fenced():
            ...  # committed only while this grant has the newest fencing token
    finally:
        release_job_lock(lock)

Outcomes the caller can tell apart (see ``locking.errors``): ``None`` means another holder
has the lock; ``LockUnavailable`` means no quorum of nodes (or no database) answered, so the
job was skipped without knowing who holds it; ``LockLost`` at ``ensure_held()`` (or
``StaleLockError`` from ``fenced()``) means the lock was lost while the job ran.

While held, a daemon thread renews the lock on a quorum at a third of its TTL. When renewal
cannot keep a quorum or finds the lock gone (expired, force-released), the lock is *lost*:
``ensure_held()`` raises ``LockLost``, ``on_lost`` is called, and the audit row says ``lost``.
The thread ends with the lock (release or loss).

Database use: with ``fence=True`` (the default) each grant costs one statement on the primary
to issue its token (with ``audit=True``, the same statement writes the audit row). If that
fails, the grant is given back and ``LockUnavailable`` is raised: a lock without a token
would not be safe. Audit updates after the grant (renewals, release) are best effort and
only logged when they fail, so a slow or failing database never makes a held lock look
lost. Safe under PgBouncer transaction mode; no session state is used.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TypeVar, overload

from django.conf import settings
from django.db import DatabaseError

from config import metrics
from locking import fencing
from locking.audit import grant_open, grants_force_released
from locking.errors import LockUnavailable
from locking.held import RENEWAL_THREAD_PREFIX, JobLock
from locking.names import new_owner_id, ttl_ms, validate_lock_name
from locking.quorum import LockQuorum, Outcome, QuorumResult, get_quorum
from locking.selectors import get_active_job_locks, is_job_lock_held

__all__ = [
    "RENEWAL_THREAD_PREFIX",
    "JobLock",
    "acquire_job_lock",
    "force_release_job_lock",
    "get_active_job_locks",
    "is_job_lock_held",
    "release_job_lock",
    "validate_lock_name",
    "with_job_lock",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")


def acquire_job_lock(
    name: str,
    ttl: float | None = None,
    *,
    fence: bool = True,
    audit: bool = True,
    on_lost: Callable[[JobLock], object] | None = None,
) -> JobLock | None:
    """Take the lock ``name`` for ``ttl`` seconds (renewed while held), without waiting for
    another holder (a vote split between racing callers is retried briefly: ``_acquire_on_quorum``).

    Returns the ``JobLock``, or ``None`` when another holder has it. Raises
    ``LockUnavailable`` when no quorum of nodes answered (or the fencing token could not be
    issued), and ``InvalidLockName`` (a ``ValueError``) for a bad name.
    ``fence=False`` skips the token (and ``fenced()``); ``audit=False`` skips the audit row.
    """
    validate_lock_name(name)
    ttl = settings.LOCK_DEFAULT_TTL if ttl is None else float(ttl)
    if ttl <= 0:
        raise ValueError(f"lock TTL must be positive, got {ttl}")
    quorum = get_quorum()
    owner = new_owner_id()
    grant_ttl_ms = ttl_ms(ttl)
    started = time.monotonic()
    result = _acquire_on_quorum(quorum, name=name, owner=owner, ttl=ttl, started=started)
    if result.outcome in (Outcome.HELD, Outcome.SPLIT):
        metrics.record_lock_acquisition(lock=name, outcome="contended", seconds=time.monotonic() - started)
        return None
    if result.outcome is not Outcome.GRANTED:
        metrics.record_lock_acquisition(lock=name, outcome="error")
        raise LockUnavailable(f"lock {name!r}: no quorum of lock nodes answered ({result.detail})")
    token = grant_id = None
    try:
        if audit:
            token, grant_id = grant_open(
                name=name, owner=owner, server=settings.APP_SERVER_NAME, pid=os.getpid(), ttl_ms=grant_ttl_ms
            )
        elif fence:
            token = fencing.issue_token(name=name, owner=owner)
    except DatabaseError as exc:
        quorum.release(name, owner)
        metrics.record_lock_acquisition(lock=name, outcome="error")
        raise LockUnavailable(f"lock {name!r}: the fencing token could not be issued: {exc}") from exc
    metrics.record_lock_acquisition(lock=name, outcome="acquired", seconds=time.monotonic() - started)
    lock = JobLock(
        name=name,
        owner=owner,
        ttl=ttl,
        token=token,
        grant_id=grant_id,
        valid_until=result.valid_until,
        quorum=quorum,
        on_lost=on_lost,
    )
    lock._start_renewal()
    return lock


def _acquire_on_quorum(
    quorum: LockQuorum, *, name: str, owner: str, ttl: float, started: float
) -> QuorumResult:
    """Ask the quorum; when the vote split (callers racing at the same instant, none with a
    majority: each attempt has given its partial grants back), ask again after a random pause,
    at most ``LOCK_SPLIT_VOTE_RETRIES`` times and only while a third of the TTL has not passed,
    so a lock won by a retry still has most of its validity. The pauses grow and are jittered
    (``LOCK_SPLIT_VOTE_DELAY`` times the attempt number, times 0.5-1.0), so the racers fall out
    of step. Without this, every caller of a split vote gave up and the tick waited for the next.
    """
    ttl_ms_ = ttl_ms(ttl)
    result = quorum.acquire(name, owner, ttl_ms_)
    budget = started + ttl / 3
    for attempt in range(1, settings.LOCK_SPLIT_VOTE_RETRIES + 1):
        if result.outcome is not Outcome.SPLIT:
            break
        pause = settings.LOCK_SPLIT_VOTE_DELAY * attempt * random.uniform(0.5, 1.0)  # noqa: S311 (jitter)
        if time.monotonic() + pause >= budget:
            break
        time.sleep(pause)
        result = quorum.acquire(name, owner, ttl_ms_)
    if result.outcome is Outcome.SPLIT:
        logger.info("lock %r: the vote stayed split after retries (%s)", name, result.detail)
    return result


def release_job_lock(lock: JobLock) -> bool:
    """Release ``lock`` (``JobLock.release``): whether it was still held on a majority of nodes."""
    return lock.release()


class _JobLockContext:
    def __init__(self, name: str, ttl: float | None, options: dict[str, object]):
        self._name, self._ttl, self._options = name, ttl, options
        self._lock: JobLock | None = None

    def __enter__(self) -> JobLock | None:
        self._lock = acquire_job_lock(self._name, self._ttl, **self._options)  # type: ignore[arg-type]
        return self._lock

    def __exit__(self, *exc_info: object) -> None:
        if self._lock is not None:
            self._lock.release()


@overload
def with_job_lock(
    name: str,
    fn: None = None,
    *,
    ttl: float | None = None,
    fence: bool = True,
    audit: bool = True,
    on_lost: Callable[[JobLock], object] | None = None,
) -> AbstractContextManager[JobLock | None]: ...


@overload
def with_job_lock(
    name: str,
    fn: Callable[[JobLock], T],
    *,
    ttl: float | None = None,
    fence: bool = True,
    audit: bool = True,
    on_lost: Callable[[JobLock], object] | None = None,
) -> T | None: ...


def with_job_lock(
    name: str,
    fn: Callable[[JobLock], T] | None = None,
    *,
    ttl: float | None = None,
    fence: bool = True,
    audit: bool = True,
    on_lost: Callable[[JobLock], object] | None = None,
) -> T | AbstractContextManager[JobLock | None] | None:
    """Run ``fn(lock)`` under the lock and return its result, or ``None`` without running it
    when another holder has the lock. Without ``fn``, a context manager that yields the
    ``JobLock`` or ``None``::

        with with_job_lock("nightly-report", ttl=120) as lock:
            if lock is None:
                return
            ...

    ``LockUnavailable`` propagates: "nobody could tell" is not "someone else has it".
    """
    options: dict[str, object] = {"fence": fence, "audit": audit, "on_lost": on_lost}
    if fn is None:
        return _JobLockContext(name, ttl, options)
    lock = acquire_job_lock(name, ttl, fence=fence, audit=audit, on_lost=on_lost)
    if lock is None:
        logger.info("lock %r is held elsewhere; not running %s", name, getattr(fn, "__name__", fn))
        return None
    try:
        return fn(lock)
    finally:
        release_job_lock(lock)


def force_release_job_lock(name: str, *, by: str, reason: str = "") -> bool:
    """Take the lock ``name`` away from whoever holds it (an operator's emergency unlock).

    Advances the fencing token first, so the old holder's fenced writes fail from this moment
    on even before its renewal notices; then deletes the key where it is, and records ``by``
    and ``reason`` in the audit. Returns ``False`` when no node had the lock. Raises ``LockUnavailable`` when
    no quorum of nodes answered.
    """
    validate_lock_name(name)
    quorum = get_quorum()
    replies = quorum.inspect(name)
    if not quorum.answered_enough(replies):
        raise LockUnavailable(f"lock {name!r}: no quorum of lock nodes answered")
    owners = {reply.value[0] for reply in replies if reply.answered and reply.value[0] is not None}
    if not owners:
        return False
    try:
        fencing.advance_token(name=name)
    except DatabaseError as exc:
        # Without the token advanced the old holder's writes would still pass: do not pretend.
        raise LockUnavailable(f"lock {name!r}: could not advance the fencing token: {exc}") from exc
    for owner in owners:
        quorum.release(name, owner)
    grants_force_released(owners=sorted(owners), lock=name, by=by, reason=reason)
    logger.warning("lock %r force-released by %s (owners %s): %s", name, by, sorted(owners), reason)
    return True
