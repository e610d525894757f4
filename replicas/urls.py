from django.conf import settings
from django.urls import URLPattern, URLResolver, path

from replicas import views


def debug_endpoints_enabled() -> bool:
    enabled = settings.REPLICAS_DEBUG_ENDPOINTS
    return settings.DEBUG if enabled is None else bool(enabled)


urlpatterns: list[URLPattern | URLResolver] = []
if debug_endpoints_enabled():
    urlpatterns += [
        path("replicas/debug/probes", views.probe_create, name="replicas-probe-create"),
        path("replicas/debug/probes/<int:probe_id>", views.probe_detail, name="replicas-probe-detail"),
        path("replicas/debug/status", views.status, name="replicas-status"),
    ]
