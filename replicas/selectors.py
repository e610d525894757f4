"""Reads of the replicas app: replica states for health checks, metrics and the command."""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.db import connections
from django.db.models.expressions import RawSQL

from config.databases import PRIMARY_DB_ALIAS
from replicas.conf import replica_settings
from replicas.lag import HEALTHY, LAGGING, NOT_A_REPLICA, UNKNOWN, UNREACHABLE
from replicas.models import RoutingProbe
from replicas.monitor import ReplicaState, Snapshot, monitor
from replicas.routing import routing_counts

__all__ = [
    "HEALTHY",
    "LAGGING",
    "NOT_A_REPLICA",
    "UNKNOWN",
    "UNREACHABLE",
    "ProbeRead",
    "database_server",
    "replica_aliases",
    "replica_states",
    "replicas_snapshot",
    "routing_counts",
    "routing_probe_read",
]


def replicas_snapshot(*, fresh: bool = False) -> Snapshot | None:
    """Every replica's last measurement, as the router uses it (the one lag measurement: health
    checks, metrics and ``manage.py replicas status`` report exactly this).

    ``fresh``: measure now; once more ``REPLICA_MAX_LAG_MS`` later if a replica's lag could not
    be told (behind the primary, yet no commit replayed since it started to date it by).
    """
    if not fresh:
        return monitor.snapshot()
    snapshot = monitor.refresh()
    if any(state.status == UNKNOWN for state in snapshot.replicas.values()):
        time.sleep(replica_settings().max_lag_ms / 1000 + 0.05)
        snapshot = monitor.refresh()
    return snapshot


def replica_aliases() -> tuple[str, ...]:
    """The replicas reads may go to (``REPLICA_DATABASES``), in settings order."""
    return replica_settings().replicas


def replica_states(*, fresh: bool = False) -> list[ReplicaState]:
    """One state per configured replica, in settings order: status, lag ms, LSNs."""
    snapshot = replicas_snapshot(fresh=fresh)
    states = {} if snapshot is None else snapshot.replicas
    return [
        states.get(alias) or ReplicaState(alias=alias, status="unknown")
        for alias in replica_settings().replicas
    ]


@dataclass(frozen=True)
class ProbeRead:
    probe_id: int
    alias: str
    in_recovery: bool

    @property
    def server(self) -> str:
        return "replica" if self.in_recovery else "primary"


def routing_probe_read(*, probe_id: int) -> ProbeRead | None:
    """Read a probe row through the router; the same query says which server answered it."""
    probe = (
        RoutingProbe.objects.annotate(in_recovery=RawSQL("pg_is_in_recovery()", ()))
        .filter(pk=probe_id)
        .first()
    )
    if probe is None:
        return None
    return ProbeRead(
        probe_id=probe.pk, alias=probe._state.db or PRIMARY_DB_ALIAS, in_recovery=probe.in_recovery
    )


def database_server(*, alias: str) -> str:
    """``'replica'`` or ``'primary'``: what the server behind ``alias`` says it is."""
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery()")
        row = cursor.fetchone()
    return "replica" if row and row[0] else "primary"
