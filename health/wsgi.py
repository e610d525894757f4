"""The balancer's probe answered in front of Django: ``/health``.

It says only "this process runs and is not draining": no request object, no middleware, no
database is needed to say it. Answered here, before Django's handler builds a request and sends
its request signals, it costs about what a bare WSGI app costs (bench/report.md), so every
balancer probing every server each second takes next to nothing from the requests it routes.

The answer is the one ``health.views`` gives (same report, body, status and headers); Django
still answers the path where this wrapper is not in front (the test client, a project that
mounts ``health.urls`` alone). The kubelet's probes (``/health/live`` every few seconds,
``/health/ready`` and ``/health/detailed`` with their dependency checks) stay Django views behind
``HealthProbeMiddleware``: ``/health/live`` also shows that Django itself still answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from django.conf import settings

from config.request_ids import request_id_for
from health import runner
from health.report import Report, encode

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

FAST_PROBES: dict[str, Callable[[], Report]] = {"/health": runner.lb_report}


def probe_response(report: Report) -> tuple[str, list[tuple[str, str]], bytes]:
    """Status line, headers and body of a probe's answer, as ``health.views.render`` makes it."""
    code, headers, body = encode(report)
    status = HTTPStatus(code)
    headers = [*headers, ("Content-Length", str(len(body))), ("X-Served-By", settings.APP_SERVER_NAME)]
    return f"{status.value} {status.phrase}", headers, body


def fast_probes(app: WSGIApp) -> WSGIApp:
    """``app`` with ``GET``/``HEAD`` ``/health`` answered in front of it."""

    def application(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        probe = FAST_PROBES.get(environ.get("PATH_INFO", ""))
        method = environ.get("REQUEST_METHOD")
        if probe is None or method not in ("GET", "HEAD"):
            return app(environ, start_response)  # (a POST gets Django's 405, as before)
        status, headers, body = probe_response(probe())
        # The id the request logging middleware would have kept: the access log and the client
        # see the same id on this path as on every other.
        request_id = request_id_for(environ.get("HTTP_X_REQUEST_ID"))
        start_response(status, [*headers, ("X-Request-ID", request_id)])
        return [b"" if method == "HEAD" else body]

    return application
