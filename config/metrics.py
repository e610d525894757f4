"""The project's own Prometheus metrics, and the small functions the apps call to move them.

Every app server runs gunicorn with several worker processes, and a Celery worker and beat
next to it. prometheus-client's multiprocess mode lets all of them write to one folder per
server (``PROMETHEUS_MULTIPROC_DIR``, one sub-folder per process group); ``/metrics`` on the
server sums counters and histograms over every file there, so a job that ran in the Celery
worker shows up in the same scrape as the requests gunicorn served. Without the variable
(tests, ``manage.py``) the metrics live in the process's own registry.

Names follow Prometheus conventions (base units, ``_total`` on counters) and pass
``promtool check metrics``. Label values are bounded: lock and job names come from code, not
from requests.

Gauges say how they combine across processes (``multiprocess_mode``): the newest reading wins
for a measurement (lag, a check's status), the largest for a timestamp.
"""

import time

from django.conf import settings
from prometheus_client import Counter, Gauge, Histogram

# Sub-millisecond to seconds: a lock round trip is ~0.3-3 ms, a job or a request up to seconds.
FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
SLOW_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)

# --- HTTP (moved by config.observability.RequestObservabilityMiddleware) ----------------------
http_requests = Counter(
    "app_http_requests_total", "Requests answered, by method, view and status.", ["method", "view", "status"]
)
http_request_duration = Histogram(
    "app_http_request_duration_seconds",
    "Time from the middleware seeing a request to its response, by view.",
    ["view"],
    buckets=FAST_BUCKETS,
)

# --- locks ----------------------------------------------------------------------------------
lock_acquisitions = Counter(
    "app_lock_acquisitions_total",
    "Lock acquisition attempts by lock and outcome (acquired, contended, error).",
    ["lock", "outcome"],
)
lock_acquire_duration = Histogram(
    "app_lock_acquire_duration_seconds", "Time to ask the quorum for a lock.", ["lock"], buckets=FAST_BUCKETS
)
lock_hold = Histogram(
    "app_lock_hold_seconds", "How long a lock was held, acquire to release.", ["lock"], buckets=SLOW_BUCKETS
)
locks_lost = Counter(
    "app_locks_lost_total", "Locks lost while held (renewal failed or fenced out).", ["lock"]
)

# --- jobs -----------------------------------------------------------------------------------
job_runs = Counter(
    "app_job_runs_total",
    "Job runs and skipped deliveries by job and outcome (the ledger's: success, failed, lost-lock, "
    "skipped-held, skipped-duplicate, skipped-unavailable, skipped-missed).",
    ["job", "outcome"],
)
job_duration = Histogram("app_job_duration_seconds", "Job run time.", ["job"], buckets=SLOW_BUCKETS)
job_start_delay = Histogram(
    "app_job_start_delay_seconds",
    "How far behind its scheduled tick a job started.",
    ["job"],
    buckets=SLOW_BUCKETS,
)
job_last_success = Gauge(
    "app_job_last_success_timestamp_seconds",
    "Unix time of the job's last successful run.",
    ["job"],
    multiprocess_mode="max",
)
job_interval = Gauge(
    "app_job_interval_seconds",
    "The job's schedule interval; the 'not run for two intervals' alert compares against it.",
    ["job"],
    multiprocess_mode="max",
)

# --- replicas -------------------------------------------------------------------------------
replica_lag = Gauge(
    "app_replica_lag_seconds",
    "Replication lag of a replica as the router last measured it.",
    ["replica"],
    multiprocess_mode="mostrecent",
)
replica_up = Gauge(
    "app_replica_up",
    "1 when the router last reached the replica, 0 when it could not.",
    ["replica"],
    multiprocess_mode="mostrecent",
)
reads_routed = Counter("app_db_reads_routed_total", "Reads the router sent to each alias.", ["alias"])
position_hints_ignored = Counter(
    "app_replica_position_hints_ignored_total",
    "X-Replica-Min-LSN values ignored: not issued by this deployment (forged, malformed) or expired.",
    ["reason"],
)

# --- health ---------------------------------------------------------------------------------
health_check_status = Gauge(
    "app_health_check_status",
    "1 when the check last passed, 0 when it failed.",
    ["check"],
    multiprocess_mode="mostrecent",
)
health_check_duration = Histogram(
    "app_health_check_duration_seconds", "Time one health check took.", ["check"], buckets=FAST_BUCKETS
)
# Labelled so that nothing is exported until readiness is first recorded (an unlabelled gauge
# would read 0, "not ready", on a server whose health app never reported).
ready = Gauge(
    "app_ready",
    "1 when the server's readiness probe last answered ready, 0 when not (draining or failing).",
    ["server"],
    multiprocess_mode="mostrecent",
)


def record_request(*, method: str, view: str, status: int, seconds: float) -> None:
    http_requests.labels(method=method, view=view, status=str(status)).inc()
    http_request_duration.labels(view=view).observe(seconds)


def record_lock_acquisition(*, lock: str, outcome: str, seconds: float | None = None) -> None:
    """``outcome``: ``acquired``, ``contended`` (someone else holds it) or ``error`` (no quorum)."""
    lock_acquisitions.labels(lock=lock, outcome=outcome).inc()
    if seconds is not None:
        lock_acquire_duration.labels(lock=lock).observe(seconds)


def record_lock_release(*, lock: str, held_seconds: float) -> None:
    lock_hold.labels(lock=lock).observe(held_seconds)


def record_lock_lost(*, lock: str) -> None:
    locks_lost.labels(lock=lock).inc()


def record_job_run(
    *,
    job: str,
    outcome: str,
    seconds: float | None = None,
    start_delay_seconds: float | None = None,
    interval_seconds: float | None = None,
) -> None:
    """One run (or skipped delivery) of a scheduled job, with the jobs ledger's outcome names;
    a ``success`` also stamps the job's last success for the "not run for two intervals" alert."""
    job_runs.labels(job=job, outcome=outcome).inc()
    if seconds is not None:
        job_duration.labels(job=job).observe(seconds)
    if start_delay_seconds is not None:
        job_start_delay.labels(job=job).observe(max(start_delay_seconds, 0.0))
    if interval_seconds is not None:
        job_interval.labels(job=job).set(interval_seconds)
    if outcome == "success":
        job_last_success.labels(job=job).set(time.time())


def record_replica_lag(*, replica: str, seconds: float | None, reachable: bool = True) -> None:
    """One measurement of a replica: unreachable ones are reported down; ``seconds`` is None when
    it answered but its lag could not be told yet (no primary position sampled)."""
    replica_up.labels(replica=replica).set(1 if reachable else 0)
    if reachable and seconds is not None:
        replica_lag.labels(replica=replica).set(seconds)


def record_read_routed(*, alias: str) -> None:
    reads_routed.labels(alias=alias).inc()


def record_position_hint_ignored(*, reason: str) -> None:
    """``reason``: ``unsigned`` (not a value a server issued) or ``expired``."""
    position_hints_ignored.labels(reason=reason).inc()


def record_health_check(*, check: str, ok: bool, seconds: float) -> None:
    health_check_status.labels(check=check).set(1 if ok else 0)
    health_check_duration.labels(check=check).observe(seconds)


def record_readiness(*, is_ready: bool) -> None:
    ready.labels(server=settings.APP_SERVER_NAME).set(1 if is_ready else 0)
