"""Probe views: thin. What each probe checks is in ``health.runner``.

``health.middleware.HealthProbeMiddleware`` calls these before host validation and the session,
auth and CSRF middleware; the URL patterns point at the same functions for ``reverse()`` and for
a project that leaves the middleware out.
"""

import time

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotFound, JsonResponse

from config import metrics
from config.clients import Caller
from health import access, runner
from health.report import Report, encode


def render(report: Report) -> HttpResponse:
    status, headers, body = encode(report)
    response = HttpResponse(body, status=status, headers=dict(headers))
    # A 503 from a probe is an answer, not a server error: Django would log one at ERROR on every
    # poll of every balancer. health.runner logs each change of state once instead.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


def health(request: HttpRequest) -> HttpResponse:
    return render(runner.lb_report())


def live(request: HttpRequest) -> HttpResponse:
    return render(runner.live_report())


def ready(request: HttpRequest) -> HttpResponse:
    report = runner.ready_report()
    metrics.record_readiness(is_ready=report.http_status == 200)
    return render(report)


def detailed(request: HttpRequest) -> HttpResponse:
    if not access.may_read_detailed(Caller.from_environ(request.META)):
        return HttpResponseNotFound(b"Not Found", content_type="text/plain")
    return render(runner.detailed_report())


def debug_slow(request: HttpRequest) -> HttpResponse:
    """Sleep ``?seconds=N`` (at most 30): lets the drain tests hold a request across a SIGTERM."""
    if not settings.HEALTH_DEBUG_SLOW_ENDPOINT:
        raise Http404
    try:
        seconds = min(max(float(request.GET.get("seconds", "1")), 0.0), 30.0)
    except ValueError:
        seconds = 1.0
    time.sleep(seconds)
    return JsonResponse({"slept": seconds, "server": settings.APP_SERVER_NAME})
