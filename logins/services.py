"""Writes: count a failed login, lock the account with backoff, clear it after a success."""

import time

from django.conf import settings
from django.core.cache import cache

from logins.selectors import FAILURES_PREFIX, LOCKED_PREFIX, account_key, login_locked_seconds


def lockout_seconds(failures: int) -> int:
    """How long the account is locked after its ``failures``-th consecutive failure (0: not yet)."""
    threshold = settings.LOGIN_LOCKOUT_FAILURES
    if failures < threshold:
        return 0
    base, ceiling = settings.LOGIN_LOCKOUT_BASE_SECONDS, settings.LOGIN_LOCKOUT_MAX_SECONDS
    return int(min(ceiling, base * 2 ** min(failures - threshold, 32)))


def login_failure_record(*, username: str) -> int:
    """Count one failed login for ``username``; return the seconds it is now locked for (0: not).

    An attempt made while the account is locked is refused without checking the password and
    is not counted: the lock runs out on schedule instead of growing with every refused try.
    """
    if not username or login_locked_seconds(username=username):
        return 0
    key = FAILURES_PREFIX + account_key(username)
    window = settings.LOGIN_FAILURE_WINDOW_SECONDS
    cache.add(key, 0, timeout=window)
    failures = int(cache.incr(key))  # atomic in Redis: parallel guesses each count
    cache.touch(key, timeout=window)
    seconds = lockout_seconds(failures)
    if seconds:
        cache.set(LOCKED_PREFIX + account_key(username), time.time() + seconds, timeout=seconds)
    return seconds


def login_failures_clear(*, username: str) -> None:
    """A successful login: the account starts from zero again."""
    key = account_key(username)
    cache.delete_many([FAILURES_PREFIX + key, LOCKED_PREFIX + key])
