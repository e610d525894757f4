"""The database router: writes and migrations to the primary, reads to a healthy, caught-up replica.

A plain Django router. django-multidb-router (``multidb``) was its base once, but every one of
its four methods was replaced: its replica choice has no health or lag, and its pinning is a
timer in one thread-local slot. Why it is not used: docs/adr/0004-read-replicas.md.
"""

from __future__ import annotations

from typing import Any

from config.databases import PRIMARY_DB_ALIAS
from replicas.conf import replica_settings
from replicas.routing import choose_read_alias


class ReplicaRouter:
    def db_for_read(self, model: type[Any], **hints: Any) -> str:
        return choose_read_alias()

    def db_for_write(self, model: type[Any], **hints: Any) -> str:
        return PRIMARY_DB_ALIAS

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        """Objects read from the primary and from its replicas are the same data."""
        same_data = {PRIMARY_DB_ALIAS, *replica_settings().replicas}
        if obj1._state.db in same_data and obj2._state.db in same_data:
            return True
        return None

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool:
        return db == PRIMARY_DB_ALIAS
