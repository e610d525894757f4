"""URL map: each app owns its own ``urls.py``."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("health.urls")),
    path("", include("locking.urls")),
    path("", include("jobs.urls")),
    path("", include("replicas.urls")),
    path("", include("messaging.urls")),
]
