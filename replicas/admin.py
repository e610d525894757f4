"""An admin base for the logs the app writes itself (the job ledger, the lock audit)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from config.databases import PRIMARY_DB_ALIAS


class PrimaryReadOnlyAdmin(admin.ModelAdmin):
    """Read on the primary (a replica may not have the newest row or outcome yet); nobody
    adds, changes or deletes a row here: the app is the only writer."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).using(PRIMARY_DB_ALIAS)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False
