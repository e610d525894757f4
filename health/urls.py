from django.urls import URLPattern, URLResolver, path

from health import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("health", views.health, name="health"),
]
