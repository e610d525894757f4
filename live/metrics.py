"""Live-update metrics, per server: open connections, events emitted and delivered.

Emitted events are counted where they are published (gunicorn and Celery workers), delivered
ones where they reach a client (the Socket.IO server); in the local cluster and in a pod every
process group writes under the server's ``METRICS_SERVER_DIR``, so one scrape of the server's
``/metrics`` has all of them (``config/metrics.py`` explains the multiprocess mode).
"""

from prometheus_client import Counter, Gauge

connections = Gauge(
    "app_live_connections",
    "Socket.IO connections open on this server.",
    multiprocess_mode="livesum",
)
connects = Counter(
    "app_live_connects_total",
    "Socket.IO connection attempts by outcome (accepted, refused-token, refused-draining, refused-error).",
    ["outcome"],
)
events_emitted = Counter(
    "app_live_events_emitted_total",
    "Events published to the Socket.IO message queue by event and outcome (published, failed).",
    ["event", "outcome"],
)
events_delivered = Counter(
    "app_live_events_delivered_total",
    "Events handed to a connected client, one per client, by event.",
    ["event"],
)
