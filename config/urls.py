"""URL map: each app owns its own ``urls.py``."""

from django.contrib import admin
from django.urls import include, path

from config.observability import metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("metrics", metrics_view, name="metrics"),
    path("", include("health.urls")),
    path("", include("locking.urls")),
    path("", include("jobs.urls")),
    path("", include("replicas.urls")),
    path("", include("messaging.urls")),
]
