"""Admin: the grant history (read-only), the live "Active locks" page, and force-release.

Force-release needs the ``locking.force_release_lock`` permission and a confirmation step;
the audit records who did it. Nothing else can be changed here.
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from locking.errors import InvalidLockName, LockUnavailable
from locking.models import LockGrant
from locking.selectors import get_active_job_locks
from locking.services import force_release_job_lock
from replicas.admin import PrimaryReadOnlyAdmin

FORCE_RELEASE_PERMISSION = "locking.force_release_lock"


@admin.register(LockGrant)
class LockGrantAdmin(PrimaryReadOnlyAdmin):
    change_list_template = "admin/locking/lockgrant_change_list.html"
    list_display = (
        "name",
        "token",
        "outcome",
        "server",
        "pid",
        "acquired",
        "last_renewed",
        "renewals",
        "expires",
        "released",
        "force_released_by",
        "force_release_reason",
    )
    list_filter = ("outcome", "server")
    search_fields = ("name", "owner")
    date_hierarchy = "acquired"

    def get_urls(self) -> list[URLPattern]:
        own = [
            path("active/", self.admin_site.admin_view(self.active_locks_view), name="locking_active_locks"),
            path(
                "active/<str:name>/force-release/",
                self.admin_site.admin_view(self.force_release_view),
                name="locking_force_release",
            ),
        ]
        return own + super().get_urls()

    def active_locks_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            locks = get_active_job_locks()
            error = ""
        except LockUnavailable as exc:
            locks, error = [], str(exc)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Active locks",
            "locks": locks,
            "error": error,
            "can_force_release": request.user.has_perm(FORCE_RELEASE_PERMISSION),
        }
        return TemplateResponse(request, "admin/locking/active_locks.html", context)

    def force_release_view(self, request: HttpRequest, name: str) -> HttpResponse:
        if not request.user.has_perm(FORCE_RELEASE_PERMISSION):
            raise PermissionDenied
        active_url = reverse("admin:locking_active_locks")
        if request.method == "POST":
            reason = request.POST.get("reason", "").strip()
            if not reason:
                self.message_user(request, "Say why the lock is force-released.", messages.ERROR)
                return HttpResponseRedirect(reverse("admin:locking_force_release", args=[name]))
            try:
                released = force_release_job_lock(name, by=request.user.get_username(), reason=reason)
            except (InvalidLockName, LockUnavailable) as exc:
                self.message_user(request, f"Lock {name!r} was not released: {exc}", messages.ERROR)
            else:
                if released:
                    self.message_user(request, f"Lock {name!r} was force-released.", messages.SUCCESS)
                else:
                    self.message_user(request, f"Lock {name!r} was not held.", messages.WARNING)
            return HttpResponseRedirect(active_url)
        try:
            lock = next((entry for entry in get_active_job_locks() if entry.name == name), None)
        except LockUnavailable as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return HttpResponseRedirect(active_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Force-release lock {name}?",
            "name": name,
            "lock": lock,
            "active_url": active_url,
        }
        return TemplateResponse(request, "admin/locking/force_release_confirm.html", context)
