"""What names a lock and its holder, and the one conversion of a TTL to milliseconds.

Shared by the services (acquire, release), the selectors (who holds what) and the audit, so
none of them imports another for these.
"""

from __future__ import annotations

import os
import re
import uuid

from django.conf import settings

from locking.errors import InvalidLockName

SAFE_NAME = re.compile(r"[A-Za-z0-9._:-]+")
SAFE_CHARACTERS = "letters, digits, '.', '_', ':' and '-'"
NAME_LIMIT = 200  # the audit and fence columns' length


def validate_lock_name(name: str) -> str:
    """Return ``name`` if it can be a lock name; raise ``InvalidLockName`` (a ValueError) saying why."""
    if not isinstance(name, str) or not name:
        raise InvalidLockName("lock name is empty")
    limit = min(settings.LOCK_NAME_MAX_LENGTH, NAME_LIMIT)
    if len(name) > limit:
        raise InvalidLockName(f"lock name is {len(name)} characters long; the limit is {limit}")
    if not SAFE_NAME.fullmatch(name):
        bad = sorted(set(SAFE_NAME.sub("", name)))
        raise InvalidLockName(f"lock name {name!r} has characters outside {SAFE_CHARACTERS}: {bad}")
    return name


def new_owner_id() -> str:
    """A grant's owner id, the value stored on the Redis nodes: ``server:pid:random``."""
    return f"{settings.APP_SERVER_NAME}:{os.getpid()}:{uuid.uuid4().hex}"


def parse_owner(owner: str) -> tuple[str, int | None]:
    """``server:pid:random`` -> (server, pid); the server name itself may contain ':'."""
    parts = owner.rsplit(":", 2)
    if len(parts) != 3:
        return owner, None
    server, pid, _ = parts
    # ASCII only: str.isdigit() also takes the digits of other scripts.
    return server, int(pid) if pid.isascii() and pid.isdigit() else None


def ttl_ms(seconds: float) -> int:
    """A TTL in seconds as the whole milliseconds the nodes, the fence and the audit use."""
    return int(seconds * 1000)
