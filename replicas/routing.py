"""Where one read goes. Called by the router for every read query, so it never touches the
network except in the read-your-writes re-check (at most once per replica per unit of work)."""

from __future__ import annotations

import collections
import itertools
import logging
import threading
import time
from typing import TypedDict

from django.db import DatabaseError, connections

from config import metrics
from config.databases import PRIMARY_DB_ALIAS
from replicas.conf import replica_settings
from replicas.context import RoutingState, current_state, primary_is_forced
from replicas.lsn import parse_lsn
from replicas.monitor import Snapshot, monitor
from replicas.positions import UNKNOWN_POSITION

logger = logging.getLogger(__name__)

# Why a read went where it went; the keys of :func:`routing_counts`.
REPLICA = "replica"
IN_TRANSACTION = "primary:in-transaction"
FORCED = "primary:forced"
AFTER_WRITE = "primary:after-write"
NOT_CAUGHT_UP = "primary:replica-behind-your-writes"
NO_HEALTHY_REPLICA = "primary:no-healthy-replica"
NOT_MEASURED = "primary:no-recent-measurement"

_round_robin = itertools.count()
_counts_lock = threading.Lock()
_reads_by_alias: collections.Counter[str] = collections.Counter()
_reads_by_reason: collections.Counter[str] = collections.Counter()
_outages = 0
_outage_open = False


def _routed(alias: str, reason: str) -> str:
    metrics.record_read_routed(alias=alias)
    with _counts_lock:
        _reads_by_alias[alias] += 1
        _reads_by_reason[reason] += 1
    return alias


def choose_read_alias() -> str:
    """The alias for one read query in the current context."""
    conf = replica_settings()
    if not conf.replicas:
        return PRIMARY_DB_ALIAS
    if connections[PRIMARY_DB_ALIAS].in_atomic_block:
        return _routed(PRIMARY_DB_ALIAS, IN_TRANSACTION)  # a transaction reads what it wrote
    if primary_is_forced():
        return _routed(PRIMARY_DB_ALIAS, FORCED)
    state = current_state()
    if state.wrote_recently(conf.read_your_writes_seconds):
        return _routed(PRIMARY_DB_ALIAS, AFTER_WRITE)
    snapshot = monitor.snapshot()
    if snapshot is None:  # not measured yet, or the measuring is stuck on a frozen server
        return _routed(PRIMARY_DB_ALIAS, NOT_MEASURED)
    healthy = snapshot.healthy
    if bool(healthy) == _outage_open:  # a change: the first read with(out) a healthy replica
        _note_outage(healthy, snapshot)
    if not healthy:
        return _routed(PRIMARY_DB_ALIAS, NO_HEALTHY_REPLICA)
    min_lsn = state.needs_lsn(time.time())
    if min_lsn == UNKNOWN_POSITION:  # the principal's position could not be read: be safe
        return _routed(PRIMARY_DB_ALIAS, NOT_CAUGHT_UP)
    if min_lsn is not None:
        healthy = tuple(alias for alias in healthy if _has_replayed(alias, min_lsn, state, snapshot))
        if not healthy:
            return _routed(PRIMARY_DB_ALIAS, NOT_CAUGHT_UP)
    alias = healthy[next(_round_robin) % len(healthy)]
    state.replicas_read.add(alias)
    return _routed(alias, REPLICA)


def _has_replayed(alias: str, min_lsn: int, state: RoutingState, snapshot: Snapshot) -> bool:
    """Has ``alias`` replayed ``min_lsn``? The cached position first; if it is behind, ask the
    replica once per unit of work (the cache is up to an interval old, a write milliseconds)."""
    cached = snapshot.replicas[alias].replay_lsn
    if cached is not None and cached >= min_lsn:
        return True
    if alias in state.replicas_behind:
        return False
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT pg_last_wal_replay_lsn()::text")
            row = cursor.fetchone()
        replayed = parse_lsn(row[0]) if row and row[0] else None
    except (DatabaseError, ValueError) as exc:
        monitor.mark_unreachable(alias, f"{type(exc).__name__}: {exc}")
        replayed = None
    if replayed is not None:
        monitor.note_replayed(alias, replayed)
        if replayed >= min_lsn:
            return True
    state.replicas_behind.add(alias)
    return False


def _note_outage(healthy: tuple[str, ...], snapshot: Snapshot) -> None:
    """Log once when the last healthy replica goes away and once when one comes back."""
    global _outages, _outage_open
    with _counts_lock:
        if bool(healthy) != _outage_open:
            return
        _outage_open = not healthy
        if _outage_open:
            _outages += 1
    if not healthy:
        states = {alias: state.as_dict() for alias, state in snapshot.replicas.items()}
        logger.warning("no healthy read replica: reads go to the primary until one recovers; %s", states)
    else:
        logger.warning("read replicas healthy again: %s", ", ".join(healthy))


class RoutingCounts(TypedDict):
    by_alias: dict[str, int]
    by_reason: dict[str, int]
    outages: int
    outage_open: bool


def routing_counts() -> RoutingCounts:
    """Reads routed since the process started: per alias, per reason, and replica outages."""
    with _counts_lock:
        return {
            "by_alias": dict(_reads_by_alias),
            "by_reason": dict(_reads_by_reason),
            "outages": _outages,
            "outage_open": _outage_open,
        }
