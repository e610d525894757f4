"""Redis ACL users, one per role, each with only the commands and keys that role needs.

Two roles reach Redis, on separate nodes (ADR 0003):

- **lock** (the lock nodes): the lock service's few commands (``SET NX PX``, its ``EVALSHA``
  scripts, ``SCAN`` for the admin's list) on the lock keys only (``LOCK_KEY_PREFIX``).
- **broker** (the broker and cache node): Celery's queues, results and pub/sub, django-redis
  (its counters run ``EVAL``), the live server's channel. Kombu names keys after queues, so any
  key; but only data commands, never the ones that reconfigure, wipe or walk the whole node.

Neither may run ``CONFIG``, ``FLUSHALL``, ``FLUSHDB``, ``KEYS``, ``DEBUG``, ``SHUTDOWN``,
``ACL``, ``REPLICAOF`` or ``MONITOR`` (``-@admin -@dangerous``). Behind Sentinel the broker also
has a replication user and a Sentinel user with exactly the commands the Redis manual lists for
them. The local cluster writes these lines into each node's ``redis.conf``
(``deploy/local/cluster/table.py``); ``render_deploy redis`` writes ACL files for production,
with passwords as SHA-256 hashes, never in clear.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

# Every client: log in, name the connection, pick a database. (redis-py also sends CLIENT
# SETINFO, unknown to Redis 7.0, and goes on when it is refused.)
CONNECTION = ("+auth", "+hello", "+ping", "+select", "+client|setname", "+quit", "+reset")
# locking/quorum.py: grant (SET ... NX PX GET), release, extend and inspect (scripts, which
# call GET, DEL, PEXPIRE and PTTL: a script's calls are checked against the same rules), and
# the admin's list of held locks (SCAN, then GET and PTTL).
LOCK_COMMANDS = ("+set", "+get", "+del", "+pexpire", "+pttl", "+scan", "+evalsha", "+eval", "+script|load")
# The broker and cache: data commands of the types Celery, django-redis and python-socketio use.
BROKER_CATEGORIES = (
    "+@connection", "+@read", "+@write", "+@keyspace", "+@string", "+@list", "+@hash", "+@set",
    "+@sortedset", "+@pubsub", "+@transaction", "+@scripting", "+@blocking",
    "+time",  # kombu's binding scripts stamp their sorted sets with the server's clock
)  # fmt: skip
# The local cluster's lock nodes also serve bench/locks/, which measures the lock service against
# its peers (python-redis-lock signals waiters on a list; pottery's keys are its own).
BENCH_PEER_COMMANDS = ("+lpush", "+blpop", "+expire", "+ttl", "+exists")
BENCH_PEER_KEYS = ("bench-*", "redlock:*", "lock-signal:*")
# Taken back from every app user, whatever a category above let in.
FORBIDDEN = ("-@admin", "-@dangerous", "-script|flush", "-script|kill", "-function")
# The Redis manual's lists: a replica's link to its master, and Sentinel's monitoring.
REPLICATION_COMMANDS = ("+psync", "+replconf", "+ping")
SENTINEL_COMMANDS = (
    "+multi", "+slaveof", "+ping", "+exec", "+subscribe", "+config|rewrite", "+role", "+publish",
    "+info", "+client|setname", "+client|kill", "+script|kill",
)  # fmt: skip
# On the Sentinels themselves: what a client needs to find the master (redis-py's Sentinel asks
# SENTINEL MASTERS and REPLICAS; kombu, django-redis and python-socketio go through it), and the
# status and health probes' reads. Never SENTINEL SET, REMOVE, MONITOR, RESET or FAILOVER.
SENTINEL_CLIENT_COMMANDS = (
    "+sentinel|get-master-addr-by-name", "+sentinel|masters", "+sentinel|master",
    "+sentinel|replicas", "+sentinel|slaves", "+sentinel|sentinels", "+sentinel|ckquorum",
)  # fmt: skip

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_PATTERN = re.compile(r"[A-Za-z0-9_.:*-]{1,128}")


class RedisAclError(ValueError):
    """A user name, password or key pattern that would not make the intended rule."""


def password_rule(password: str, *, hashed: bool) -> str:
    """``>password`` (a node's own config file) or ``#<sha256>`` (an ACL file in production)."""
    if not password or any(character.isspace() for character in password):
        raise RedisAclError("a Redis ACL password must be non-empty and have no spaces")
    return f"#{hashlib.sha256(password.encode()).hexdigest()}" if hashed else f">{password}"


def _user(name: str, password: str, rules: Iterable[str], *, hashed: bool) -> str:
    if not _NAME.fullmatch(name):
        raise RedisAclError(f"{name!r} is not a Redis user name")
    return " ".join(["user", name, "reset", "on", password_rule(password, hashed=hashed), *rules])


def lock_user(
    name: str,
    password: str,
    *,
    key_patterns: Iterable[str],
    extra_commands: Iterable[str] = (),
    hashed: bool = False,
) -> str:
    """The lock nodes' app user: the lock service's commands on ``key_patterns`` only."""
    patterns = list(key_patterns)
    if not patterns or not all(_PATTERN.fullmatch(pattern) for pattern in patterns):
        raise RedisAclError(f"lock key patterns {patterns!r} must be like 'lock:*'")
    commands = [*CONNECTION, *LOCK_COMMANDS, *extra_commands]
    rules = [*(f"~{pattern}" for pattern in patterns), "resetchannels", "-@all", *commands]
    return _user(name, password, [*rules, *FORBIDDEN], hashed=hashed)


def broker_user(name: str, password: str, *, hashed: bool = False) -> str:
    """The broker and cache node's app user: data commands on any key and channel."""
    rules = ["~*", "&*", "-@all", *BROKER_CATEGORIES, *FORBIDDEN]
    return _user(name, password, rules, hashed=hashed)


def replication_user(name: str, password: str, *, hashed: bool = False) -> str:
    return _user(name, password, ["resetchannels", "-@all", *REPLICATION_COMMANDS], hashed=hashed)


def sentinel_user(name: str, password: str, *, hashed: bool = False) -> str:
    return _user(name, password, ["&*", "-@all", *SENTINEL_COMMANDS], hashed=hashed)


def sentinel_client_user(name: str, password: str, *, hashed: bool = False) -> str:
    """The app's user on a Sentinel: find the master, nothing that changes what Sentinel does."""
    rules = [
        "resetchannels",
        "-@all",
        "+auth",
        "+hello",
        "+ping",
        "+client|setname",
        *SENTINEL_CLIENT_COMMANDS,
    ]
    return _user(name, password, rules, hashed=hashed)


def sentinel_peer_user(name: str, password: str, *, hashed: bool = False) -> str:
    """The user Sentinels log in to each other with (``sentinel sentinel-user``): the Redis
    manual gives it every command and channel."""
    return _user(name, password, ["allchannels", "+@all"], hashed=hashed)


def acl_lines(users: Iterable[str]) -> str:
    """A node's users: the default user off (no password-less access), then ``users``."""
    return "".join(f"{line}\n" for line in ("user default off", *users))
