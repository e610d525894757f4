"""Read-your-writes across requests without cookies: each principal's last write position in Redis.

A principal is whoever the request's credentials name: the ``Authorization`` header (a bearer
token, hashed) or, without one, the session cookie (hashed). After a request of that principal
writes, the primary's WAL position is kept under it for ``REPLICA_READ_YOUR_WRITES_SECONDS`` (the
larger one wins when two requests race); a later request of the same principal, on any server,
reads from a replica only once it has replayed that position. The store is the cache's Redis
(``CACHES["default"]``). When Redis cannot be asked, reads go to the primary: never a stale read.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

from replicas.conf import replica_settings

logger = logging.getLogger(__name__)

# A position no replica has: the principal's reads go to the primary (Redis could not be asked).
UNKNOWN_POSITION = (1 << 64) - 1

# SET the key to the new position unless it holds a larger one; refresh the expiry either way.
_KEEP_MAX = """
local current = tonumber(redis.call('GET', KEYS[1]))
local new = tonumber(ARGV[1])
if current and current > new then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return current
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return new
"""


def principal_key(request: HttpRequest) -> str | None:
    """A stable, non-secret name for whoever the request's credentials belong to, or None."""
    credentials = request.headers.get("Authorization", "").strip()
    kind = "auth"
    if not credentials:
        credentials = request.COOKIES.get(settings.SESSION_COOKIE_NAME, "")
        kind = "session"
    if not credentials:
        return None
    digest = hashlib.sha256(credentials.encode()).hexdigest()
    return f"replicas:written:{kind}:{digest}"


def _client() -> Any:
    # django-redis: the raw client, for a script the cache API has no word for.
    return cache.client.get_client(write=True)  # type: ignore[attr-defined]


def position_remember(*, key: str, lsn: int) -> None:
    """Keep ``lsn`` as the principal's last write position (the larger one if there is one)."""
    window_ms = max(1, int(replica_settings().read_your_writes_seconds * 1000))
    try:
        _client().eval(_KEEP_MAX, 1, cache.make_key(key), lsn, window_ms)
    except Exception:  # a cache outage must not fail the write that already committed
        logger.warning("could not keep the write position for read-your-writes", exc_info=True)


def position_for(*, key: str) -> int | None:
    """The principal's last write position if it is within the window; ``UNKNOWN_POSITION`` when
    Redis cannot say (reads then go to the primary)."""
    try:
        value = _client().get(cache.make_key(key))
    except Exception:
        logger.warning("could not read the write position for read-your-writes", exc_info=True)
        return UNKNOWN_POSITION
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return UNKNOWN_POSITION
