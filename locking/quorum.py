"""The Redis side of the lock: one key per lock on every node (``locking.nodes``), and a
majority decides.

The nodes are contacted concurrently without threads: the command is written to every
node's socket first, then the answers are read as they arrive (``select``) until a common
deadline (the read timeout; connects have their own timeout, no retries). So one hung node
(TCP connects, nothing answers) costs at most one timeout per call, never one per node.
"""

from __future__ import annotations

import enum
import logging
import os
import select
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import redis
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from locking.nodes import Command, LockNode, NodeReply, NodeResting, NodeTimedOut

logger = logging.getLogger(__name__)


class Outcome(enum.Enum):
    GRANTED = "granted"
    HELD = "held"  # a quorum answered and someone else holds the lock
    UNAVAILABLE = "unavailable"  # not enough nodes answered to decide
    SPLIT = "split"  # a quorum answered, but no caller got a majority (they raced): retry
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


@dataclass
class Pending:
    """A command sent to some nodes whose answers are not read yet."""

    command: Command
    resting: list[LockNode]
    replies: list[NodeReply]
    waiting: dict[Any, tuple[LockNode, Any]] = field(default_factory=dict)
    deadline: float = 0.0


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
        # Answers are awaited for one read timeout after the last command was sent.
        self.answer_timeout = socket_timeout

    def key(self, name: str) -> str:
        return f"{self.key_prefix}{name}"

    def each(self, command: Command) -> list[NodeReply]:
        """Send ``command`` to every node, then read answers as they arrive until all came or
        the deadline passed; unanswered nodes count as failed. (Not stopping at a majority: a
        healthy node a little slower than the others must not be taken for a failed one.)

        Resting nodes are left out while the others can make a majority alone, and asked in a
        second round when the others did not answer enough to make one."""
        return self.collect(self.send(command))

    def send(self, command: Command) -> Pending:
        """The first half of ``each``: the command is on its way; ``collect`` reads the answers.
        Other work (a database statement) can run in between while the nodes answer."""
        resting = [node for node in self.nodes if node.resting]
        if len(self.nodes) - len(resting) < self.majority:
            resting = []
        active = [node for node in self.nodes if node not in resting]
        return self._send(active, command, resting)

    def collect(self, pending: Pending) -> list[NodeReply]:
        replies = self._collect(pending)
        answered = sum(1 for reply in replies if reply.answered)
        if pending.resting and answered < self.majority:
            return self._collect(self._send(pending.resting, pending.command, [], replies))
        return replies + [NodeReply(node, error=NodeResting(node.label)) for node in pending.resting]

    def _send(
        self,
        nodes: list[LockNode],
        command: Command,
        resting: list[LockNode],
        replies: list[NodeReply] | None = None,
    ) -> Pending:
        pending = Pending(command=command, resting=resting, replies=list(replies or []))
        for node in nodes:
            try:
                connection = node.send(command)
            except (redis.RedisError, OSError) as exc:
                node._failed(exc)
                pending.replies.append(NodeReply(node, error=exc))
                continue
            pending.waiting[connection._sock] = (node, connection)
        pending.deadline = time.monotonic() + self.answer_timeout
        return pending

    def _collect(self, pending: Pending) -> list[NodeReply]:
        replies, waiting = pending.replies, pending.waiting
        while waiting:
            # Past the deadline, still take the answers that already arrived (poll, no wait).
            remaining = max(0.0, pending.deadline - time.monotonic())
            readable, _, _ = select.select(list(waiting), [], [], remaining)
            if not readable:
                break
            for sock in readable:
                node, connection = waiting.pop(sock)
                replies.append(node.receive(connection, pending.command))
        for node, connection in waiting.values():
            replies.append(node.abandon(connection))
        waiting.clear()
        return replies

    def _validity(self, started: float, ttl_ms: int) -> float:
        """The monotonic deadline before which the grant is safe (Redlock's validity time)."""
        drift_ms = ttl_ms * self.drift_factor + 2
        return started + (ttl_ms - drift_ms) / 1000

    def _granted(self, replies: list[NodeReply]) -> int:
        return sum(1 for reply in replies if reply.answered and reply.value is True)

    def _ask(self, command: Command, ttl_ms: int) -> tuple[list[NodeReply], int, float | None]:
        """Ask every node; the replies, how many said yes, and the validity deadline if that
        is a majority still valid now (``None`` otherwise)."""
        started = time.monotonic()
        replies = self.each(command)
        valid_until = self._validity(started, ttl_ms)
        yes = self._granted(replies)
        valid = yes >= self.majority and time.monotonic() < valid_until
        return replies, yes, valid_until if valid else None

    def acquire(self, name: str, owner: str, ttl_ms: int) -> QuorumResult:
        replies, granted, valid_until = self._ask(LockNode.grant(self.key(name), owner, ttl_ms), ttl_ms)
        if valid_until is not None:
            return QuorumResult(Outcome.GRANTED, valid_until=valid_until)
        self._give_back(name, owner, replies)
        answered = sum(1 for reply in replies if reply.answered)
        detail = _describe(replies)
        if answered < self.majority:
            return QuorumResult(Outcome.UNAVAILABLE, detail=detail)
        if granted >= self.majority:
            return QuorumResult(
                Outcome.UNAVAILABLE, detail=f"granted too slowly for a {ttl_ms} ms TTL ({detail})"
            )
        holders = Counter(reply.value for reply in replies if reply.answered and reply.value is not True)
        if holders and max(holders.values()) >= self.majority:
            return QuorumResult(Outcome.HELD, detail=detail)
        return QuorumResult(Outcome.SPLIT, detail=detail)

    def _give_back(self, name: str, owner: str, replies: list[NodeReply]) -> None:
        """Delete the key where this failed attempt may have set it: the nodes that granted it,
        and the nodes that timed out (their ``SET`` may still land), resting or not, so that
        neither blocks the next acquirer for a TTL. Nodes that never got the command are spared."""
        nodes = [
            reply.node
            for reply in replies
            if (reply.answered and reply.value is True) or isinstance(reply.error, NodeTimedOut)
        ]
        if nodes:
            self._collect(self._send(nodes, LockNode.release(self.key(name), owner), []))

    def extend(self, name: str, owner: str, ttl_ms: int) -> QuorumResult:
        replies, _, valid_until = self._ask(LockNode.extend(self.key(name), owner, ttl_ms), ttl_ms)
        if valid_until is not None:
            return QuorumResult(Outcome.GRANTED, valid_until=valid_until)
        not_ours = sum(1 for reply in replies if reply.answered and not reply.value)
        detail = _describe(replies)
        if not_ours > len(self.nodes) - self.majority:
            return QuorumResult(Outcome.LOST, detail=detail)
        return QuorumResult(Outcome.UNCERTAIN, detail=detail)

    def release(self, name: str, owner: str) -> list[NodeReply]:
        """Compare-and-delete on every node; the replies say where the key was still ours."""
        return self.collect(self.send_release(name, owner))

    def send_release(self, name: str, owner: str) -> Pending:
        return self.send(LockNode.release(self.key(name), owner))

    def inspect(self, name: str) -> list[NodeReply]:
        """Each node's (value, remaining ms) for ``name``."""
        key = self.key(name)
        return self.each(LockNode.inspect(key))

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
        # Listing is rare (admin, command): node by node, each bounded by its own timeouts.
        pattern = f"{self.key_prefix}*"
        return [node.call(lambda this: this.scan(pattern)) for node in self.nodes]

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
