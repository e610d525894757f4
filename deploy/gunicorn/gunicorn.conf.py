"""gunicorn configuration shared by every app server (local cluster, systemd, Kubernetes).

Every value comes from the environment so the same file serves every server.
"""

import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:28001")
# gthread, two processes per core, four threads each: chosen by bench/gunicorn (ADR 0007).
workers = int(os.environ.get("GUNICORN_WORKERS", str(2 * (os.cpu_count() or 1))))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
# Longer than NGINX's upstream keepalive_timeout (60 s), so NGINX closes idle connections first
# and never sends a request on one gunicorn is closing (ADR 0007).
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "75"))
# Connections the kernel queues for a server before a worker accepts them. The edge keeps at
# most NGINX_UPSTREAM_MAX_CONNS requests in flight per server (32) and sheds the rest with a
# quick 503 (ADR 0014), so this queue never fills from the balancer; it is sized for bursts of
# new kept-alive upstream connections and direct probes. The kernel caps it at
# net.core.somaxconn: a smaller value there is reported at start-up.
backlog = int(os.environ.get("GUNICORN_BACKLOG", "2048"))
try:
    _somaxconn = int(open("/proc/sys/net/core/somaxconn").read())  # noqa: SIM115 (read once at start)
except (OSError, ValueError):
    _somaxconn = backlog
if _somaxconn < backlog:
    print(
        f"gunicorn: GUNICORN_BACKLOG={backlog} is above net.core.somaxconn={_somaxconn}; "
        f"the kernel queues only {_somaxconn} (raise it with sysctl)",
        flush=True,
    )
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "5000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "500"))
proc_name = f"gunicorn-{os.environ.get('APP_SERVER_NAME', 'app')}"

# All instances on one host would share $HOME/.gunicorn/gunicorn.ctl; nothing here uses it.
control_socket_disable = True

accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = os.environ.get("GUNICORN_ERROR_LOG", "-")
# The request id the app answered with (config/request_ids.py kept the edge's id or made a new
# one), never the client's header: a raw header could forge fields or whole lines in this log.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms rid=%({x-request-id}o)s'

# --- Draining (health/drain.py, docs/adr/0005-health-and-draining.md) -------------------------
# On SIGTERM the master first flips /health and /health/ready to 503 on every worker and keeps
# serving for this long, so a balancer polling every 10 s (or a readiness probe) takes the
# server out before it stops; then gunicorn's graceful stop runs, finishing in-flight requests
# within graceful_timeout. Kubernetes: terminationGracePeriodSeconds > drain + graceful_timeout.
# Imported here, in the master, so the shared drain flag exists before any worker is forked.
from health import drain  # noqa: E402

health_drain_seconds = float(os.environ.get("HEALTH_DRAIN_SECONDS", drain.DEFAULT_DRAIN_SECONDS))


def when_ready(server: object) -> None:
    drain.install_in_arbiter(server, drain_seconds=health_drain_seconds)


# --- Metrics (config/metrics.py, prometheus-client multiprocess mode) -------------------------
def child_exit(server: object, worker: object) -> None:
    """Mark a dead worker's live gauges as gone; its counters stay in the server's sums."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(getattr(worker, "pid"))  # noqa: B009 (gunicorn's Worker)


# --- Start-up (config/startup.py) ---------------------------------------------------------------
def on_starting(server: object) -> None:
    """In the master, before any worker: a missing setting is one line naming it, and exit 1."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    from config.startup import load_settings_or_exit

    load_settings_or_exit()
