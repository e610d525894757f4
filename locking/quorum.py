"""The Redis side of the lock: one key per lock on every node, and a majority decides.

Per node there are three atomic operations, each one round trip:

- grant: ``SET key owner NX PX ttl``;
- release: a Lua compare-and-delete (delete only if the value is still our owner id);
- extend: a Lua compare-and-``PEXPIRE`` (renew only if the value is still our owner id).

They are redis-py calls rather than python-redis-lock's ``Lock`` because that class works in
whole seconds (``EXPIRE``), pushes to a second "signal" list on every release, and runs its own
renewal thread per node; a quorum needs millisecond TTLs, one round trip per node and one
renewal thread per lock (ADR 0003).

The nodes are contacted concurrently, each call bounded by a connect and a read timeout
without retries, so one hung node (TCP connects, nothing answers) costs at most one timeout
per call, and a node that failed rests for ``LOCK_NODE_RETRY_INTERVAL`` before it is tried
again, so it costs nothing while it stays down. A node going down or coming back is logged
once, not once per call.
"""

from __future__ import annotations

import enum
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
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
        self._release = self.client.register_script(RELEASE_SCRIPT)
        self._extend = self.client.register_script(EXTEND_SCRIPT)
        self._inspect = self.client.register_script(INSPECT_SCRIPT)
        self._retry_interval = retry_interval
        self._state = threading.Lock()
        self._down_since: float | None = None
        self._retry_at = 0.0

    # --- the operations (each one round trip) ---------------------------------------------
    def grant(self, key: str, owner: str, ttl_ms: int) -> bool:
        return bool(self.client.set(key, owner, nx=True, px=ttl_ms))

    def release(self, key: str, owner: str) -> bool:
        return bool(self._release(keys=[key], args=[owner]))

    def extend(self, key: str, owner: str, ttl_ms: int) -> bool:
        return bool(self._extend(keys=[key], args=[owner, ttl_ms]))

    def inspect(self, key: str) -> tuple[str | None, int]:
        value, pttl = self._inspect(keys=[key])
        return value, int(pttl)

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
        if self.resting:
            return NodeReply(self, error=NodeResting(self.label))
        try:
            value = op(self)
        except (redis.RedisError, OSError) as exc:
            self._failed(exc)
            return NodeReply(self, error=exc)
        self._answered()
        return NodeReply(self, value=value)

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


class Outcome(enum.Enum):
    GRANTED = "granted"
    HELD = "held"  # a quorum answered and someone else holds the lock
    UNAVAILABLE = "unavailable"  # not enough nodes answered to decide
    LOST = "lost"  # a quorum can no longer be ours (extend)
    UNCERTAIN = "uncertain"  # extend failed without proof of loss; retry while valid


@dataclass(frozen=True)
class QuorumResult:
    outcome: Outcome
    valid_until: float = 0.0  # time.monotonic() deadline of the grant's validity
    detail: str = ""


def _describe(replies: list[NodeReply]) -> str:
    parts = []
    for reply in replies:
        state = repr(reply.value) if reply.answered else type(reply.error).__name__
        parts.append(f"{reply.node.label}={state}")
    return ", ".join(parts)


class LockQuorum:
    """The lock nodes from ``LOCK_REDIS_URLS``; a majority of them decides every question."""

    def __init__(
        self,
        urls: list[str],
        *,
        key_prefix: str,
        connect_timeout: float,
        socket_timeout: float,
        retry_interval: float,
        drift_factor: float,
    ):
        if not urls:
            raise ImproperlyConfigured("LOCK_REDIS_URLS lists no lock node")
        self.nodes = [
            LockNode(
                url,
                connect_timeout=connect_timeout,
                socket_timeout=socket_timeout,
                retry_interval=retry_interval,
            )
            for url in urls
        ]
        self.majority = len(self.nodes) // 2 + 1
        self.key_prefix = key_prefix
        self.drift_factor = drift_factor
        # A node call takes at most connect + read timeout; the margin covers thread hand-offs.
        self.call_timeout = connect_timeout + socket_timeout + 0.05
        self._executor = (
            ThreadPoolExecutor(max_workers=4 * len(self.nodes), thread_name_prefix="lock-node-io")
            if len(self.nodes) > 1
            else None
        )

    def key(self, name: str) -> str:
        return f"{self.key_prefix}{name}"

    def each(
        self,
        op: Callable[[LockNode], Any],
        *,
        enough: Callable[[list[NodeReply]], bool] | None = None,
    ) -> list[NodeReply]:
        """Run ``op`` on every node at once; stop waiting at the deadline or when ``enough``."""
        if self._executor is None:
            return [node.call(op) for node in self.nodes]
        replies: list[NodeReply] = []
        futures: dict[Future[NodeReply], LockNode] = {}
        for node in self.nodes:
            if node.resting:
                replies.append(NodeReply(node, error=NodeResting(node.label)))
            else:
                futures[self._executor.submit(node.call, op)] = node
        deadline = time.monotonic() + self.call_timeout
        pending = set(futures)
        while pending and not (enough is not None and enough(replies)):
            done, pending = wait(
                pending, timeout=max(0.0, deadline - time.monotonic()), return_when=FIRST_COMPLETED
            )
            if not done:
                break
            replies.extend(future.result() for future in done)
        replies.extend(
            NodeReply(futures[future], error=NodeTimedOut(futures[future].label)) for future in pending
        )
        return replies

    def _validity(self, started: float, ttl_ms: int) -> float:
        """The monotonic deadline before which the grant is safe (Redlock's validity time)."""
        drift_ms = ttl_ms * self.drift_factor + 2
        return started + (ttl_ms - drift_ms) / 1000

    def _granted(self, replies: list[NodeReply]) -> int:
        return sum(1 for reply in replies if reply.answered and reply.value)

    def acquire(self, name: str, owner: str, ttl_ms: int) -> QuorumResult:
        key = self.key(name)
        started = time.monotonic()
        replies = self.each(
            lambda node: node.grant(key, owner, ttl_ms),
            enough=lambda so_far: self._granted(so_far) >= self.majority,
        )
        valid_until = self._validity(started, ttl_ms)
        granted = self._granted(replies)
        if granted >= self.majority and time.monotonic() < valid_until:
            return QuorumResult(Outcome.GRANTED, valid_until=valid_until)
        if granted:
            self.release(name, owner)  # partial grants must not block the next acquirer
        answered = sum(1 for reply in replies if reply.answered)
        detail = _describe(replies)
        if answered >= self.majority and granted < self.majority:
            return QuorumResult(Outcome.HELD, detail=detail)
        if answered >= self.majority:
            detail = f"granted too slowly for a {ttl_ms} ms TTL ({detail})"
        return QuorumResult(Outcome.UNAVAILABLE, detail=detail)

    def extend(self, name: str, owner: str, ttl_ms: int) -> QuorumResult:
        key = self.key(name)
        started = time.monotonic()
        replies = self.each(
            lambda node: node.extend(key, owner, ttl_ms),
            enough=lambda so_far: self._granted(so_far) >= self.majority,
        )
        valid_until = self._validity(started, ttl_ms)
        extended = self._granted(replies)
        if extended >= self.majority and time.monotonic() < valid_until:
            return QuorumResult(Outcome.GRANTED, valid_until=valid_until)
        not_ours = sum(1 for reply in replies if reply.answered and not reply.value)
        detail = _describe(replies)
        if not_ours > len(self.nodes) - self.majority:
            return QuorumResult(Outcome.LOST, detail=detail)
        return QuorumResult(Outcome.UNCERTAIN, detail=detail)

    def release(self, name: str, owner: str) -> list[NodeReply]:
        """Compare-and-delete on every node; the replies say where the key was still ours."""
        key = self.key(name)
        return self.each(lambda node: node.release(key, owner))

    def inspect(self, name: str) -> list[NodeReply]:
        """Each node's (value, remaining ms) for ``name``."""
        key = self.key(name)
        return self.each(lambda node: node.inspect(key))

    def holder(self, replies: list[NodeReply]) -> tuple[str, int] | None:
        """The owner that a majority of nodes agree on, with its remaining ms, or ``None``."""
        held = [reply.value for reply in replies if reply.answered and reply.value[0] is not None]
        counts = Counter(value for value, _ in held)
        for owner, count in counts.items():
            if count >= self.majority:
                # The lock lives as long as a majority still has it: the majority-th longest TTL.
                pttls = sorted((pttl for value, pttl in held if value == owner), reverse=True)
                return owner, pttls[self.majority - 1]
        return None

    def scan(self) -> list[NodeReply]:
        pattern = f"{self.key_prefix}*"
        return self.each(lambda node: node.scan(pattern))

    def answered_enough(self, replies: list[NodeReply]) -> bool:
        return sum(1 for reply in replies if reply.answered) >= self.majority


_quorums: dict[tuple[Any, ...], LockQuorum] = {}
_quorums_lock = threading.Lock()


def get_quorum() -> LockQuorum:
    """The quorum for the current settings, one per process (rebuilt after a fork)."""
    config = (
        tuple(settings.LOCK_REDIS_URLS),
        settings.LOCK_KEY_PREFIX,
        settings.LOCK_SOCKET_CONNECT_TIMEOUT,
        settings.LOCK_SOCKET_TIMEOUT,
        settings.LOCK_NODE_RETRY_INTERVAL,
        settings.LOCK_CLOCK_DRIFT_FACTOR,
        os.getpid(),  # a forked child (Celery prefork, gunicorn) must not share sockets or threads
    )
    with _quorums_lock:
        quorum = _quorums.get(config)
        if quorum is None:
            quorum = LockQuorum(
                list(config[0]),
                key_prefix=config[1],
                connect_timeout=config[2],
                socket_timeout=config[3],
                retry_interval=config[4],
                drift_factor=config[5],
            )
            _quorums[config] = quorum
        return quorum
