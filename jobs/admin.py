"""The run ledger in the admin: read-only (on the primary), filterable, with durations."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from jobs.models import JobPause, JobRun, RetentionRun
from replicas.admin import PrimaryReadOnlyAdmin


@admin.register(JobRun)
class JobRunAdmin(PrimaryReadOnlyAdmin):
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

    @admin.display(description="duration", ordering="finished")
    def duration_display(self, run: JobRun) -> str:
        duration = run.duration
        return "—" if duration is None else f"{duration.total_seconds():.3f}s"

    def get_readonly_fields(self, request: HttpRequest, obj: JobRun | None = None) -> list[str]:
        return [field.name for field in JobRun._meta.fields]


@admin.register(JobPause)
class JobPauseAdmin(PrimaryReadOnlyAdmin):
    """Paused jobs (``manage.py jobs pause`` / ``resume``): every server skips them."""

    list_display = ("job", "paused_by", "paused_at", "reason")
    ordering = ("job",)

    def get_readonly_fields(self, request: HttpRequest, obj: JobPause | None = None) -> list[str]:
        return [field.name for field in JobPause._meta.fields]


@admin.register(RetentionRun)
class RetentionRunAdmin(PrimaryReadOnlyAdmin):
    """The retention job's runs, newest first: when it last ran and how many rows of each table
    it deleted (``counts``)."""

    list_display = ("tick", "outcome", "server", "started", "finished", "counts", "error")
    list_filter = ("outcome",)
    ordering = ("-started", "-id")

    def get_queryset(self, request: HttpRequest):  # type: ignore[no-untyped-def]
        return super().get_queryset(request).filter(job="retention")

    def get_readonly_fields(self, request: HttpRequest, obj: JobRun | None = None) -> list[str]:
        return [field.name for field in JobRun._meta.fields]
