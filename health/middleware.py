"""Answer the probes ahead of everything that could refuse or slow them.

Listed right after ``ServedByMiddleware`` (which only adds a header) and before
SecurityMiddleware, sessions, CommonMiddleware (the first to call ``request.get_host()``, which
enforces ``ALLOWED_HOSTS``), CSRF and auth. A kubelet probes ``http://<pod IP>:port/health/ready``
with the pod IP as Host, which no ``ALLOWED_HOSTS`` lists; a balancer's probe needs no session
or user. The probes themselves never read the Host header.
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed

from config.request_ids import request_id_for
from health import views

PROBE_VIEWS: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    "/health": views.health,
    "/health/live": views.live,
    "/health/ready": views.ready,
    "/health/detailed": views.detailed,
}


class HealthProbeMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = PROBE_VIEWS.get(request.path_info)
        if view is None:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD"])
        response = view(request)
        # Probes skip the request logging middleware, but their answers carry the request's id
        # as every other answer does, and the access log writes that one (deploy/gunicorn/).
        response["X-Request-ID"] = request_id_for(request.META.get("HTTP_X_REQUEST_ID"))
        return response
