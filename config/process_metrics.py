"""A metrics port for the processes that serve no HTTP (the Celery worker and beat on Kubernetes).

On a VM or in the local cluster the web server's ``/metrics`` sums the worker's and beat's
multiprocess files (same host, ``METRICS_SERVER_DIR``). A pod has only its own, so with
``CELERY_METRICS_PORT`` set the worker's or beat's main process serves its process group's
metrics (every prefork child included: prometheus-client's multiprocess files in
``PROMETHEUS_MULTIPROC_DIR``) on that port, for a PodMonitor to scrape. The NetworkPolicy lets
only the monitoring namespace reach it.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector

logger = logging.getLogger(__name__)

PORT_VARIABLE = "CELERY_METRICS_PORT"


def metrics_registry() -> CollectorRegistry:
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return registry


def serve_metrics(**_signal: Any) -> None:
    """Start the metrics port if one is configured (a Celery ``worker_init``/``beat_init`` receiver)."""
    port = os.environ.get(PORT_VARIABLE)
    if not port:
        return
    start_http_server(int(port), addr="0.0.0.0", registry=metrics_registry())  # noqa: S104 - a pod's port
    logger.info("metrics served on port %s", port)
