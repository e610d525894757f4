"""Bearer tokens: whose a token is, cached per process, revoked on every server at once.

Every API request checks its token, so the check must be cheap, and a revoked token must be
refused by the very next request on every server (docs/adr/0010-token-lookup.md):

- The authority is the **primary**: a lookup never reads the replica, where a deleted token or
  a deactivated user can still be visible for a while.
- Each process remembers what it looked up (token hash -> staff member, church, user, expiry)
  for at most ``MESSAGING_TOKEN_CACHE_SECONDS``, stamped with the **revocation generation**: a
  counter in Redis that everything able to end a token's life increments once its change has
  committed (logout, a token deleted, a user or staff member or church saved or deleted).
- Every lookup reads the generation first (one Redis GET, far cheaper than a query); an entry
  stamped with another generation is looked up again on the primary. Because the generation is
  read *before* the query and bumped *after* the commit, an entry can only carry the new
  generation if its query saw the change.
- Expiry is compared with the clock on every request; a miss is never cached.
- When Redis does not answer, nothing is served from the cache: the lookup goes to the primary
  (for a second, so a dead Redis costs no timeout per request), and a change that cannot bump
  the generation raises :class:`RevocationNotPublished` after its commit (logout answers 503).
- The broker's Redis fails over under Sentinel with asynchronous replication (ADR 0019): a bump
  is a new random value, never a counter (a lost bump must not be issued again to a later
  revocation, which the entries stamped with it would survive), and counts as published only
  once the replica has it too (``WAIT``); otherwise it raises like an unreachable Redis.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.databases import PRIMARY_DB_ALIAS

logger = logging.getLogger(__name__)

GENERATION_KEY = "messaging:token-generation"
# After Redis failed to answer, skip it (straight to the primary) for this long.
REDIS_RETRY_SECONDS = 1.0
# How long a bump waits for the broker's replica to confirm it (``WAIT 1``): on loopback or a
# LAN it takes well under a millisecond; a replica this far behind could be promoted without it.
REPLICA_CONFIRM_MS = 250
MAX_ENTRIES = 10_000


class RevocationNotPublished(Exception):
    """A change that ends tokens committed, but the other servers could not be told."""


@dataclass(frozen=True)
class _Entry:
    staff: Any  # messaging.models.StaffMember with church and user loaded; read-only
    expires_at: datetime
    generation: bytes
    cached_until: float


class TokenCache:
    """One per process (``token_cache``); safe across gthread threads (dict ops under the GIL)."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._redis_down_until = 0.0
        self.hits = 0
        self.misses = 0

    # --- Redis ----------------------------------------------------------------------------

    def _redis(self) -> Any:
        from django_redis import get_redis_connection

        return get_redis_connection("default")

    def _key(self) -> str:
        prefix = settings.CACHES["default"].get("KEY_PREFIX", "")
        return f"{prefix}:{GENERATION_KEY}"

    def generation(self) -> bytes | None:
        """The current revocation generation, or None when Redis does not answer."""
        if time.monotonic() < self._redis_down_until:
            return None
        try:
            value = self._redis().get(self._key())
        except Exception as error:  # redis-py raises many kinds; all mean "not known"
            self._redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS
            self._entries.clear()
            logger.warning("token cache off for %.0fs: Redis did not answer (%s)", REDIS_RETRY_SECONDS, error)
            return None
        return value if value is not None else b"0"

    def bump(self) -> None:
        """Tell every server that tokens may have ended; raises RevocationNotPublished."""
        self._entries.clear()
        try:
            # One pipeline, one connection: WAIT counts the replicas that have this connection's
            # writes, so it must follow the SET on the same connection.
            pipeline = self._redis().pipeline(transaction=False)
            pipeline.set(self._key(), secrets.token_hex(8))
            wanted = settings.BROKER_REPLICAS_TO_CONFIRM
            if wanted:
                pipeline.execute_command("WAIT", wanted, REPLICA_CONFIRM_MS)
            confirmed = pipeline.execute()[-1] if wanted else 0
        except Exception as error:
            raise RevocationNotPublished(f"the token revocation could not be published: {error}") from error
        if confirmed < wanted:
            raise RevocationNotPublished("the token revocation reached no replica of the broker")

    def bump_on_commit(self, *, using: str = PRIMARY_DB_ALIAS) -> None:
        """Bump when the current transaction commits (at once outside one); once per transaction."""
        connection = transaction.get_connection(using)
        if connection.in_atomic_block and any(entry[1] == self.bump for entry in connection.run_on_commit):
            return
        transaction.on_commit(self.bump, using=using)

    # --- lookups --------------------------------------------------------------------------

    def staff_member(self, *, raw_token: str) -> Any:
        """The live token's staff member (church and user loaded), or None."""
        key_hash = token_hash(raw_token=raw_token)
        now = timezone.now()
        generation = self.generation()
        if generation is not None:
            entry = self._entries.get(key_hash)
            if (
                entry is not None
                and entry.generation == generation
                and entry.expires_at > now
                and entry.cached_until > time.monotonic()
            ):
                self.hits += 1
                return entry.staff
        self.misses += 1
        found = _lookup_on_primary(key_hash=key_hash, now=now)
        if found is None:
            self._entries.pop(key_hash, None)
            return None
        staff, expires_at = found
        if generation is not None and settings.MESSAGING_TOKEN_CACHE_SECONDS > 0:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key_hash] = _Entry(
                staff, expires_at, generation, time.monotonic() + settings.MESSAGING_TOKEN_CACHE_SECONDS
            )
        return staff

    def clear(self) -> None:
        self._entries.clear()
        self._redis_down_until = 0.0


def token_hash(*, raw_token: str) -> str:
    return hashlib.sha256(raw_token.encode()).hexdigest()


def _lookup_on_primary(*, key_hash: str, now: datetime) -> tuple[Any, datetime] | None:
    """One indexed query on the primary: the token's row, its user and staff member and church."""
    from messaging.models import ApiToken

    token = (
        ApiToken.objects.using(PRIMARY_DB_ALIAS)
        .select_related("user__staff__church")
        .filter(key_hash=key_hash, expires_at__gt=now, user__is_active=True, user__staff__isnull=False)
        .first()
    )
    if token is None:
        return None
    staff = token.user.staff
    return staff, token.expires_at


token_cache = TokenCache()
