"""The run ledger in the admin: read-only, filterable, with durations."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from jobs.models import JobRun
from replicas import PRIMARY_DB_ALIAS


@admin.register(JobRun)
class JobRunAdmin(admin.ModelAdmin):
    list_display = (
        "job",
        "tick",
        "outcome",
        "attempt",
        "server",
        "pid",
        "lock_token",
        "started",
        "duration_display",
        "caught_up",
        "superseded",
        "counts",
    )
    list_filter = ("job", "outcome", "server", "caught_up", "superseded")
    search_fields = ("job", "server", "task_id", "error")
    date_hierarchy = "tick"
    ordering = ("-started", "-id")
    list_per_page = 100

    def get_queryset(self, request: HttpRequest):  # type: ignore[no-untyped-def]
        return super().get_queryset(request).using(PRIMARY_DB_ALIAS)

    @admin.display(description="duration", ordering="finished")
    def duration_display(self, run: JobRun) -> str:
        duration = run.duration
        return "—" if duration is None else f"{duration.total_seconds():.3f}s"

    def get_readonly_fields(self, request: HttpRequest, obj: JobRun | None = None) -> list[str]:
        return [field.name for field in JobRun._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: JobRun | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: JobRun | None = None) -> bool:
        return False
