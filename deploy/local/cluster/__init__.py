"""The local cluster: a three-server deployment on loopback, from nothing, with one command.

    python -m deploy.local.cluster up            # start everything (safe to run twice)
    python -m deploy.local.cluster down          # stop everything this script started
    python -m deploy.local.cluster status        # one line per process
    python -m deploy.local.cluster start NAME    # start one process (and nothing else)
    python -m deploy.local.cluster stop NAME     # stop one process by its recorded PID

What runs (default ports; each overridable by the variable named in ``status``):
three etcd members 25379-25381, two PostgreSQL members under Patroni (``pg1``, ``pg2``: REST
API 25008-25009, PostgreSQL 25434-25435; ``status`` prints each one's ``role=``), two
PgBouncers 26432 and 26433 (``pgbouncer``, ``pgbouncer2``, both listed by the app, ADR 0018),
each with an HAProxy beside it routing to the leader and the replica (``haproxy`` 25432/25433,
``haproxy2`` 25436/25437; ADR 0017), three lock
Redis nodes 26379-26381, the broker Redis as a master and a replica 26390-26391 (``redis-broker``,
``redis-broker2``; ``status`` prints each one's ``role=``) watched by three Sentinels 26392-26394
(``redis-sentinel-1..3``, ADR 0019), three app servers (gunicorn) 28001-28003 each
with a Celery worker and beat and a Socket.IO server 28051-28053, and the edge pair: two NGINX
on 28080 (HTTP) / 28443 (HTTPS), each in its own network namespace with a keepalived holding the
virtual address clients use (``nginx-a``/``nginx-b``, ``keepalived-a``/``keepalived-b``;
``EDGE_URL``; ADR 0020).

State, logs and PID files live in ``.cluster/`` (``CLUSTER_STATE_DIR``). Every process is
started here and stopped here by its recorded PID, after checking that the PID still runs the
command we started (PIDs get reused). Patroni (with its PostgreSQL) and PgBouncer run as the
``postgres`` user: PostgreSQL refuses root. Tests import this module to stop, pause and restart single
processes.
"""

from deploy.local.cluster.cli import down, status, up
from deploy.local.cluster.edge import add_client_address, edge_roles
from deploy.local.cluster.pgbouncer import pgbouncer_values, write_pgbouncer_auth_file
from deploy.local.cluster.processes import (
    Service,
    port_open,
    recorded_pid,
    start_service,
    stop_service,
    wait_stopped,
)
from deploy.local.cluster.settings import (
    LIVE_PORT_OFFSET,
    PG_BIN,
    PG_USER,
    REPO,
    ClusterError,
    EdgeNetwork,
    Settings,
)
from deploy.local.cluster.table import APP_TIER_PREFIXES, VENV_BIN, restart, services, signal_service, stop

__all__ = [
    "APP_TIER_PREFIXES",
    "LIVE_PORT_OFFSET",
    "PG_BIN",
    "PG_USER",
    "REPO",
    "VENV_BIN",
    "ClusterError",
    "EdgeNetwork",
    "Service",
    "Settings",
    "add_client_address",
    "down",
    "edge_roles",
    "pgbouncer_values",
    "port_open",
    "recorded_pid",
    "restart",
    "services",
    "signal_service",
    "start_service",
    "status",
    "stop",
    "stop_service",
    "up",
    "wait_stopped",
    "write_pgbouncer_auth_file",
]
