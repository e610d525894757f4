"""The JSON API, its auth endpoints and the provider webhooks (one django-ninja API)."""

from django.urls import URLPattern, URLResolver, path

from messaging.api import api

urlpatterns: list[URLPattern | URLResolver] = [path("", api.urls)]
