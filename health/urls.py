from django.urls import URLPattern, URLResolver, path

from health import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("health", views.health, name="health"),
    path("health/live", views.live, name="health-live"),
    path("health/ready", views.ready, name="health-ready"),
    path("health/detailed", views.detailed, name="health-detailed"),
    path("health/debug/slow", views.debug_slow, name="health-debug-slow"),
]
