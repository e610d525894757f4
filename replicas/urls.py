from django.urls import URLPattern, URLResolver, path

from replicas import views
from replicas.conf import debug_endpoints_enabled

urlpatterns: list[URLPattern | URLResolver] = []
if debug_endpoints_enabled():
    urlpatterns += [
        path("replicas/debug/probes", views.probe_create, name="replicas-probe-create"),
        path("replicas/debug/probes/<int:probe_id>", views.probe_detail, name="replicas-probe-detail"),
        path("replicas/debug/status", views.status, name="replicas-status"),
    ]
