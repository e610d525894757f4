"""One lock node: a Redis server spoken to in single round trips, without threads.

Per node there are three atomic operations, each one round trip:

- grant: ``SET key owner NX PX ttl GET`` (the reply names the current holder when it is not
  granted, so a vote split between callers is told apart from a lock held by one);
- release: a Lua compare-and-delete (delete only if the value is still our owner id);
- extend: a Lua compare-and-``PEXPIRE`` (renew only if the value is still our owner id).

They are redis-py calls rather than python-redis-lock's ``Lock`` because that class works in
whole seconds (``EXPIRE``), pushes to a second "signal" list on every release, and runs its own
renewal thread per node; a quorum needs millisecond TTLs, one round trip per node and one
renewal thread per lock (ADR 0003). A node that failed rests for ``LOCK_NODE_RETRY_INTERVAL``
before it is tried again, so it costs nothing while it stays down; a node going down or coming
back is logged once, not once per call. ``locking.quorum`` asks all of them at once.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

logger = logging.getLogger(__name__)

RELEASE_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""

EXTEND_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""

INSPECT_SCRIPT = """
return {redis.call('get', KEYS[1]), redis.call('pttl', KEYS[1])}
"""


GRANTED = True  # a grant reply's value when this node gave us the key (else: the holder's owner id)


class NodeResting(Exception):
    """The node failed recently and is not tried again until its retry time."""


class NodeTimedOut(Exception):
    """The node did not answer before the call's deadline."""


@dataclass(frozen=True)
class NodeReply:
    node: LockNode
    value: Any = None
    error: BaseException | None = None

    @property
    def answered(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Command:
    """One command for a node, and how to turn its answer into a value."""

    args: tuple[Any, ...]
    parse: Callable[[Any], Any]
    body: str | None = None  # the script, to fall back to EVAL when a node lost its script cache

    @classmethod
    def script(cls, body: str, key: str, *args: Any, parse: Callable[[Any], Any]) -> Command:
        sha = hashlib.sha1(body.encode()).hexdigest()  # noqa: S324 (Redis names scripts by SHA-1)
        return cls(("EVALSHA", sha, 1, key, *args), parse, body=body)

    def fallback(self) -> tuple[Any, ...]:
        assert self.body is not None
        return ("EVAL", self.body, *self.args[2:])


class LockNode:
    """One Redis node of the quorum, with its own short timeouts and outage state."""

    def __init__(self, url: str, *, connect_timeout: float, socket_timeout: float, retry_interval: float):
        self.url = url
        self.client: redis.Redis = redis.Redis.from_url(
            url,
            socket_connect_timeout=connect_timeout,
            socket_timeout=socket_timeout,
            retry=Retry(NoBackoff(), 0),  # a retry would add a second timeout to the bound
            decode_responses=True,
        )
        kwargs = self.client.connection_pool.connection_kwargs
        self.label = f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"
        self._retry_interval = retry_interval
        self._state = threading.Lock()
        self._down_since: float | None = None
        self._retry_at = 0.0

    # --- the operations (each one round trip) ---------------------------------------------
    # Each returns the command to send and how to read its answer, so that the quorum can send
    # it to every node before reading any answer.
    @staticmethod
    def grant(key: str, owner: str, ttl_ms: int) -> Command:
        # Redis 7: with GET, SET NX answers nil when it set the key, else the current value.
        return Command(("SET", key, owner, "NX", "PX", ttl_ms, "GET"), lambda answer: answer or GRANTED)

    @staticmethod
    def release(key: str, owner: str) -> Command:
        return Command.script(RELEASE_SCRIPT, key, owner, parse=bool)

    @staticmethod
    def extend(key: str, owner: str, ttl_ms: int) -> Command:
        return Command.script(EXTEND_SCRIPT, key, owner, ttl_ms, parse=bool)

    @staticmethod
    def inspect(key: str) -> Command:
        return Command.script(INSPECT_SCRIPT, key, parse=lambda answer: (answer[0], int(answer[1])))

    def scan(self, pattern: str) -> dict[str, tuple[str, int]]:
        """Every key matching ``pattern`` with its value and remaining ms (SCAN, never KEYS)."""
        keys = list(self.client.scan_iter(match=pattern, count=500))
        if not keys:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.get(key)
            pipe.pttl(key)
        answers = pipe.execute()
        found = {}
        for index, key in enumerate(keys):
            value, pttl = answers[2 * index], answers[2 * index + 1]
            if value is not None and pttl > 0:
                found[key] = (value, int(pttl))
        return found

    # --- outage bookkeeping ---------------------------------------------------------------
    @property
    def resting(self) -> bool:
        return self._down_since is not None and time.monotonic() < self._retry_at

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def call(self, op: Callable[[LockNode], Any]) -> NodeReply:
        """Run ``op`` against this node's client (for the rare multi-round calls: SCAN)."""
        if self.resting:
            return NodeReply(self, error=NodeResting(self.label))
        try:
            value = op(self)
        except (redis.RedisError, OSError) as exc:
            self._failed(exc)
            return NodeReply(self, error=exc)
        self._answered()
        return NodeReply(self, value=value)

    def send(self, command: Command) -> Any:
        """Take a pooled connection and write ``command`` to it; raises on a dead node."""
        pool = self.client.connection_pool
        connection = pool.get_connection()
        try:
            connection.send_command(*command.args)
        except BaseException:
            connection.disconnect()
            pool.release(connection)
            raise
        return connection

    def receive(self, connection: Any, command: Command) -> NodeReply:
        """Read the answer (it has arrived) and give the connection back to the pool."""
        pool = self.client.connection_pool
        try:
            try:
                answer = connection.read_response()
            except redis.exceptions.NoScriptError:
                # The node restarted and lost its script cache: EVAL once, which reloads it.
                connection.send_command(*command.fallback())
                answer = connection.read_response()
        except (redis.RedisError, OSError) as exc:
            connection.disconnect()
            pool.release(connection)
            self._failed(exc)
            return NodeReply(self, error=exc)
        pool.release(connection)
        self._answered()
        return NodeReply(self, value=command.parse(answer))

    def abandon(self, connection: Any) -> NodeReply:
        """The answer did not come in time: drop the connection (a late answer must not be
        read by the next command) and count the node as failed."""
        connection.disconnect()
        self.client.connection_pool.release(connection)
        error = NodeTimedOut(self.label)
        self._failed(error)
        return NodeReply(self, error=error)

    def _failed(self, exc: BaseException) -> None:
        with self._state:
            now = time.monotonic()
            first = self._down_since is None
            if first:
                self._down_since = now
            self._retry_at = now + self._retry_interval
        if first:
            logger.warning(
                "lock node %s is unavailable (%s: %s); continuing with the other nodes, retrying every %.1fs",
                self.label,
                type(exc).__name__,
                exc,
                self._retry_interval,
            )
        else:
            logger.debug("lock node %s still unavailable: %s", self.label, exc)

    def _answered(self) -> None:
        if self._down_since is None:
            return
        with self._state:
            down_since, self._down_since = self._down_since, None
        if down_since is not None:
            logger.warning("lock node %s is back after %.1fs", self.label, time.monotonic() - down_since)
