"""Writes of the replicas app (only the diagnostic probe row)."""

from replicas.models import RoutingProbe


def routing_probe_create(*, note: str = "") -> RoutingProbe:
    return RoutingProbe.objects.create(note=note[:64])
