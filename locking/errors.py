"""What the lock service raises. Callers tell the outcomes apart by type:

- ``acquire_job_lock`` returns ``None`` when another holder has the lock (a normal outcome);
- it raises ``LockUnavailable`` when no quorum of Redis nodes (or no database, for the fencing
  token) could be reached, so nobody can know whether the lock is free;
- ``LockLost`` means a lock this process held is no longer held (renewal failed, it expired, or
  an operator force-released it); ``StaleLockError`` is the ``LockLost`` that PostgreSQL
  detected: a newer fencing token exists, so the protected writes were rolled back.
"""


class LockError(Exception):
    """Base class of the lock service's errors."""


class LockUnavailable(LockError):
    """No quorum of lock nodes (or no database for the fencing token) answered in time."""


class LockLost(LockError):
    """A lock this process acquired is not held any more."""


class StaleLockError(LockLost):
    """A newer holder has a higher fencing token; the fenced block was rolled back."""


class InvalidLockName(ValueError):
    """The lock name is empty, too long, or has characters outside the safe set."""
