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
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TypeVar, overload

from django.conf import settings
from django.db import DatabaseError, connections
from django.utils import timezone

from config import metrics
from locking import fencing
from locking.audit import grant_closed, grant_open, grant_renewed, grants_force_released
from locking.errors import LockLost, LockUnavailable
from locking.models import LockGrant
from locking.names import new_owner_id, ttl_ms, validate_lock_name
from locking.quorum import LockQuorum, Outcome, QuorumResult, get_quorum
from locking.selectors import get_active_job_locks, is_job_lock_held

__all__ = [
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

RENEWAL_THREAD_PREFIX = "lock-renewal:"


class JobLock:
    """A lock this process holds. Renewed in the background until released or lost."""

    def __init__(
        self,
        *,
        name: str,
        owner: str,
        ttl: float,
        token: int | None,
        grant_id: int | None,
        valid_until: float,
        quorum: LockQuorum,
        on_lost: Callable[[JobLock], object] | None,
    ):
        self.name = name
        self.owner = owner
        self.ttl = ttl
        self.token = token
        self.grant_id = grant_id
        self.acquired = timezone.now()
        self.acquired_monotonic = time.monotonic()
        self.renewals = 0
        self.lost_reason: str | None = None
        self._valid_until = valid_until
        self._quorum = quorum
        self._on_lost = on_lost
        self._released = False
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self._losing = threading.Lock()  # the renewal thread and ensure_held() may both notice

    def __repr__(self) -> str:
        return f"<JobLock {self.name!r} token={self.token} owner={self.owner!r}>"

    @property
    def ttl_ms(self) -> int:
        return ttl_ms(self.ttl)

    @property
    def held(self) -> bool:
        return not self._released and self.lost_reason is None and time.monotonic() < self._valid_until

    @property
    def expires_in(self) -> float:
        """Seconds of validity left on this process's own clock (0 when released or lost)."""
        return max(0.0, self._valid_until - time.monotonic()) if self.held else 0.0

    def ensure_held(self) -> None:
        """Raise ``LockLost`` unless the lock is still held; call it at checkpoints of long work."""
        if self._released:
            raise LockLost(f"lock {self.name!r} was released")
        if self.lost_reason is None and time.monotonic() >= self._valid_until:
            self._lose("its validity ran out before a renewal succeeded")
        if self.lost_reason is not None:
            raise LockLost(f"lock {self.name!r} was lost: {self.lost_reason}")

    @contextmanager
    def fenced(self) -> Iterator[None]:
        """A transaction on the primary that commits only while this grant has the newest token.

        Raises ``LockLost`` if the lock is already known lost, ``StaleLockError`` (rolling back)
        if a newer grant or a force-release advanced the token (locking/fencing.py).
        """
        if self.token is None:
            raise ValueError(f"lock {self.name!r} was acquired with fence=False and has no fencing token")
        self.ensure_held()
        with fencing.fenced(name=self.name, token=self.token, owner=self.owner, ttl_ms=self.ttl_ms):
            yield

    def release(self) -> bool:
        """Stop renewing and delete the lock where it is still ours.

        Returns whether it was still held on a majority of nodes (``False`` when it had been
        lost or had expired, or on a second call). Never raises for an unreachable node.
        """
        if self._released:
            return False
        renewer = self._renewer
        self._stop.set()
        # The deletes go out first; joining the renewer and the audit update overlap their round trip.
        pending = self._quorum.send_release(self.name, self.owner)
        if renewer is not None and renewer is not threading.current_thread():
            renewer.join()
        was_lost = self.lost_reason is not None
        self._released = True
        if not was_lost:
            # Still valid on our own clock means still ours (a force-release closed the row already).
            expired = time.monotonic() >= self._valid_until
            self._close_grant(LockGrant.Outcome.EXPIRED if expired else LockGrant.Outcome.RELEASED)
        replies = self._quorum.collect(pending)
        metrics.record_lock_release(lock=self.name, held_seconds=time.monotonic() - self.acquired_monotonic)
        deleted = sum(1 for reply in replies if reply.answered and reply.value)
        return not was_lost and deleted >= self._quorum.majority

    def __enter__(self) -> JobLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    # --- renewal ------------------------------------------------------------------------------
    def _start_renewal(self) -> None:
        self._renewer = threading.Thread(
            target=self._renew_until_stopped, name=f"{RENEWAL_THREAD_PREFIX}{self.name}", daemon=True
        )
        self._renewer.start()

    def _renew_until_stopped(self) -> None:
        interval = self.ttl / 3
        wait = interval
        try:
            while not self._stop.wait(wait):
                result = self._quorum.extend(self.name, self.owner, self.ttl_ms)
                if self._stop.is_set():
                    return
                if result.outcome is Outcome.GRANTED:
                    self._valid_until = result.valid_until
                    self.renewals += 1
                    self._audit_renewal()
                    wait = interval
                elif result.outcome is Outcome.LOST:
                    self._lose(f"renewal found it gone or taken on a majority of nodes ({result.detail})")
                    return
                elif time.monotonic() >= self._valid_until:
                    self._lose(f"renewal could not reach a quorum before it expired ({result.detail})")
                    return
                else:
                    # Still valid: try again soon, well before the validity runs out.
                    wait = min(interval, max(0.01, (self._valid_until - time.monotonic()) / 3))
        except Exception as exc:  # a renewal that died silently would let the lock lapse unnoticed
            logger.exception("lock %r: the renewal thread failed", self.name)
            self._lose(f"the renewal thread failed: {exc!r}")
        finally:
            connections.close_all()  # this thread's own database connections

    def _audit_renewal(self) -> None:
        if self.grant_id is not None:
            grant_renewed(grant_id=self.grant_id, lock=self.name, ttl_ms=self.ttl_ms)

    def _close_grant(self, outcome: LockGrant.Outcome) -> None:
        if self.grant_id is not None:
            grant_closed(grant_id=self.grant_id, lock=self.name, outcome=outcome)

    def _lose(self, reason: str) -> None:
        with self._losing:
            if self.lost_reason is not None or self._released:
                return
            self.lost_reason = reason
        logger.warning("lock %r (token %s) lost: %s", self.name, self.token, reason)
        metrics.record_lock_lost(lock=self.name)
        self._quorum.release(self.name, self.owner)  # whatever nodes still have it
        self._close_grant(LockGrant.Outcome.LOST)
        if self._on_lost is not None:
            try:
                self._on_lost(self)
            except Exception:
                logger.exception("lock %r: the on_lost callback failed", self.name)


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
