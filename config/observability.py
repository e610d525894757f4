"""Per-request observability, and the ``/metrics`` endpoint.

:class:`RequestObservabilityMiddleware` gives each request the id NGINX assigned
(``X-Request-ID``; made here when a request reaches the server directly or carries an id
``config.request_ids`` refuses), logs one JSON line when the response is ready (method, path,
view, status, duration, user and church ids when known) and counts it in
``app_http_requests_total``. It echoes the id back in the response so a
client can quote it.

``/metrics`` is internal: it answers only clients on ``METRICS_ALLOWED_NETWORKS`` (the client
address read behind trusted proxies, as for ``/health/detailed``) or presenting ``METRICS_TOKEN``,
and a 404 to anyone else.
"""

import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client import REGISTRY as PROCESS_REGISTRY
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

from config import metrics, redis_urls
from config.broker_sentinel import BrokerCollector
from config.clients import Caller, may_read_operator_path
from config.logging import request_id_var
from config.request_ids import request_id_for

request_logger = logging.getLogger("app.request")

# Label values must stay few: any other method a client invents is counted as "other".
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _view_name(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "<unresolved>"  # 404s: one label value, not one per probed path
    return match.view_name or match._func_path


def _user_and_church(request: HttpRequest) -> tuple[int | None, int | None]:
    # The API's bearer auth leaves its staff member on ``request.auth`` (user and church);
    # a session user is read only if something already loaded it (no extra query here).
    auth = getattr(request, "auth", None)
    if auth is not None and hasattr(auth, "church_id"):
        return getattr(auth, "user_id", None), auth.church_id
    user = getattr(request, "_cached_user", None)
    if user is not None and user.is_authenticated:
        return user.pk, None
    return None, None


class RequestObservabilityMiddleware:
    """Request id, one JSON log line and the HTTP metrics for every request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        request_id = request_id_for(request.META.get("HTTP_X_REQUEST_ID"))
        token = request_id_var.set(request_id)
        status = 500
        try:
            response = self.get_response(request)
            status = response.status_code
            response["X-Request-ID"] = request_id
            return response
        finally:
            seconds = time.perf_counter() - started
            view = _view_name(request)
            user_id, church_id = _user_and_church(request)
            method = request.method if request.method and request.method in KNOWN_METHODS else "other"
            metrics.record_request(method=method, view=view, status=status, seconds=seconds)
            request_logger.info(
                "request",
                extra={
                    "method": request.method,
                    "path": request.path,
                    "view": view,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 2),
                    "user_id": user_id,
                    "church_id": church_id,
                    "remote_addr": request.META.get("REMOTE_ADDR"),
                },
            )
            request_id_var.reset(token)


def may_read_metrics(caller: Caller) -> bool:
    """Whether the scraper may read /metrics, on an app server or a live server: ``METRICS_TOKEN``
    as a bearer token, or a client on ``METRICS_ALLOWED_NETWORKS``, its address read behind
    trusted proxies exactly as for /health/detailed (config/clients.py): a forged
    ``X-Forwarded-For`` is not believed."""
    return may_read_operator_path(
        caller, token=settings.METRICS_TOKEN, networks=settings.METRICS_ALLOWED_NETWORKS
    )


class ServerCollector(MultiProcessCollector):
    """prometheus-client's multiprocess collector over several folders, merged into one answer."""

    def __init__(self, registry: CollectorRegistry, folders: list[Path]) -> None:
        self.folders = folders
        registry.register(self)

    def collect(self) -> Iterable[Metric]:
        files = sorted(str(file) for folder in self.folders for file in folder.glob("*.db"))
        return self.merge(files, accumulate=True)


def metrics_folders() -> list[Path]:
    """The folders that hold this server's metrics, or none outside multiprocess mode.

    ``PROMETHEUS_MULTIPROC_DIR`` is the folder this process group writes. When
    ``METRICS_SERVER_DIR`` names a folder, every sub-folder of it is read: one per process group
    of the same server (gunicorn, the Celery worker, beat; see ``deploy/local/cluster/table.py``), so a
    job run in the Celery worker is counted in the scrape of the server's ``/metrics``.
    """
    own = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not own:
        return []
    server_dir = settings.METRICS_SERVER_DIR
    if server_dir:
        return sorted(path for path in Path(server_dir).iterdir() if path.is_dir())
    return [Path(own)]


def metrics_registry() -> CollectorRegistry:
    folders = metrics_folders()
    if not folders:
        return PROCESS_REGISTRY
    registry = CollectorRegistry()
    ServerCollector(registry, folders)
    if redis_urls.is_sentinel(settings.BROKER_REDIS_URL):
        # The broker's master, failovers and replicas, as its Sentinels say at this scrape.
        registry.register(BrokerCollector(settings.BROKER_REDIS_URL))
    return registry


def metrics_view(request: HttpRequest) -> HttpResponse:
    if not may_read_metrics(Caller.from_environ(request.META)):
        raise Http404
    return HttpResponse(generate_latest(metrics_registry()), content_type=CONTENT_TYPE_LATEST)
