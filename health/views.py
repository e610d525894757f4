"""Probe views. Placeholder until the health app lands: answers without touching a dependency."""

from django.conf import settings
from django.http import HttpRequest, JsonResponse


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "pass", "server": settings.APP_SERVER_NAME})
