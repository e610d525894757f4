"""Reads: is an account locked, and for how long."""

import hashlib
import math
import time

from django.core.cache import cache

FAILURES_PREFIX = "login-failures:"
LOCKED_PREFIX = "login-locked:"


def account_key(username: str) -> str:
    """The cache key part for a username: case-folded (one account, however it is typed), hashed."""
    return hashlib.sha256(username.strip().casefold().encode()).hexdigest()


def login_locked_seconds(*, username: str, now: float | None = None) -> int:
    """Whole seconds until the account may try again; 0 when it is not locked."""
    until = cache.get(LOCKED_PREFIX + account_key(username))
    if until is None:
        return 0
    remaining = float(until) - (time.time() if now is None else now)
    return max(0, math.ceil(remaining))
