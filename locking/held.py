"""The lock a process holds: its validity, the renewal thread that keeps it, and its release.

``locking.services.acquire_job_lock`` makes one; this module only keeps it alive. While held,
a daemon thread renews the lock on a quorum at a third of its TTL; when renewal cannot keep a
quorum or finds the lock gone, the lock is lost (``ensure_held()`` raises ``LockLost``,
``on_lost`` is called, the audit row says ``lost``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import connections
from django.utils import timezone

from config import metrics
from locking import fencing
from locking.audit import grant_closed, grant_renewed
from locking.errors import LockLost
from locking.models import LockGrant
from locking.names import ttl_ms
from locking.quorum import LockQuorum, Outcome

logger = logging.getLogger(__name__)

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
