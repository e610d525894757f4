"""Small project-wide middleware."""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse


class ServedByMiddleware:
    """Name the app server that answered, so an operator (and a test) can see the balancing."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.server_name = settings.APP_SERVER_NAME

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response["X-Served-By"] = self.server_name
        return response
