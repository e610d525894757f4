"""The components issue 20 kills, one registry for the fault tests and the availability run.

Each :class:`Fault` is a name, a ``kill`` that SIGKILLs the whole component (agent and server, a
master and its workers) and leaves it down, a ``restored`` check that says whether the cluster is
redundant in that component again, and the bounds (issue 20, "Proof") on how long after the
kill requests may fail and sends may wait. A new component joins by adding one entry to
:data:`FAULTS`; the tests (tests/cluster/ha/proof.py) and ``bench.availability`` pick it up.

Restoring is never done here by hand: :func:`restore` runs the cluster's own tooling
(``python -m deploy.local.cluster up``, which starts what is not running), and the component's
members rejoin by themselves (Patroni's ``pg_rewind``, etcd's member catch-up).

After a fault every proof makes the same three checks on the writes the load had acknowledged
(:func:`delivery`): none is missing, none reached the provider twice (the development gateway
records every call with the message's idempotency key), and none stays unsent once the
component's bound and two sweep intervals (``MESSAGING_SWEEP_INTERVAL_SECONDS``) have passed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import redis
import requests

from bench.apiload import READ, WRITE
from deploy.local import cluster
from deploy.local.cluster import patroni, sentinel

REJOIN_WITHIN = 60.0  # issue 20: redundancy back within 60 s of the restore


@dataclass(frozen=True)
class Fault:
    name: str
    what: str  # the component, in words, for reports
    kill: Callable[[cluster.Settings], list[str]]  # returns the processes it killed
    restored: Callable[[cluster.Settings], bool]
    # Seconds after the kill during which a request of that kind may fail (0: none may).
    writes_within: float
    reads_within: float
    # Seconds after the kill by which sending resumes (a message accepted during the fault is
    # sent within this plus two sweep intervals).
    sends_within: float
    # The kinds of request of which only those in flight at the kill may fail (within the bound
    # above): a PgBouncer resets its sockets; NGINX retries a GET on another app server but never a
    # POST. Every request sent after the kill must succeed.
    in_flight_may_fail: tuple[str, ...] = ()


# --- killing -------------------------------------------------------------------------------------


def kill_member(cfg: cluster.Settings, name: str) -> None:
    """SIGKILL the whole member: its Patroni and its postmaster (Patroni runs it in another session)."""
    service = cluster.services(cfg)[name]
    patroni_pid = cluster.recorded_pid(service, cfg)
    postmaster = patroni.postmaster_pid(cfg, name)
    if not (patroni_pid and postmaster):
        raise cluster.ClusterError(f"{name}: patroni {patroni_pid}, postmaster {postmaster}")
    os.kill(patroni_pid, signal.SIGKILL)
    os.kill(postmaster, signal.SIGKILL)


def _kill_postgres_leader(cfg: cluster.Settings) -> list[str]:
    leader = patroni.member_with_role(cfg, patroni.LEADER)
    kill_member(cfg, leader)
    return [leader]


def _kill_service(name: str) -> Callable[[cluster.Settings], list[str]]:
    def kill(cfg: cluster.Settings) -> list[str]:
        cluster.signal_service(name, signal.SIGKILL, cfg)
        return [name]

    return kill


def _kill_app_server(cfg: cluster.Settings) -> list[str]:
    """The last app server's gunicorn master and workers at once, as a crashed machine would: the
    cluster starts it in a session of its own, so its group is exactly those."""
    name = cfg.server_names[-1]
    pid = cluster.recorded_pid(cluster.services(cfg)[name], cfg)
    if pid is None:
        raise cluster.ClusterError(f"{name} is not running")
    os.killpg(pid, signal.SIGKILL)
    return [name]


def _kill_broker_master(cfg: cluster.Settings) -> list[str]:
    """The broker Redis node that is master now (Sentinel promotes the replica)."""
    masters = [name for name, role in sentinel.broker_roles(cfg).items() if role == sentinel.MASTER]
    if len(masters) != 1:
        raise cluster.ClusterError(f"no single broker master: {sentinel.broker_roles(cfg)}")
    cluster.signal_service(masters[0], signal.SIGKILL, cfg)
    return masters


def _kill_active_nginx(cfg: cluster.Settings) -> list[str]:
    """The NGINX (master and workers: one process group) of the edge holding the virtual address;
    its keepalived's check fails and the BACKUP takes the address."""
    table = cluster.services(cfg)
    active = [name for name, role in cluster.edge_roles(cfg, table).items() if role == "MASTER"]
    if len(active) != 1:
        raise cluster.ClusterError(f"no single MASTER edge: {cluster.edge_roles(cfg, table)}")
    name = active[0].replace("keepalived-", "nginx-")
    pid = cluster.recorded_pid(table[name], cfg)
    if pid is None:
        raise cluster.ClusterError(f"{name} is not running")
    os.killpg(pid, signal.SIGKILL)
    return [name]


# --- restored? -----------------------------------------------------------------------------------


def postgres_redundant(cfg: cluster.Settings) -> bool:
    """One member leads and every other streams from it."""
    roles = patroni.roles(cfg)
    replicas = [name for name, role in roles.items() if role == patroni.REPLICA]
    return sorted(roles.values(), key=str) == [patroni.LEADER, patroni.REPLICA] and all(
        patroni._streaming(cfg, name) for name in replicas
    )


def etcd_redundant(cfg: cluster.Settings) -> bool:
    return all(patroni.etcd_healthy(endpoint) for endpoint in cfg.etcd_endpoints())


def _database_answers(cfg: cluster.Settings, port: int) -> bool:
    try:
        with psycopg.connect(
            host="127.0.0.1", port=port, dbname=cfg.db_name, user=cfg.db_user, password=cfg.db_password,
            autocommit=True, prepare_threshold=None, connect_timeout=2,
        ) as conn:  # fmt: skip
            return conn.execute("SELECT 1").fetchone() == (1,)
    except psycopg.Error:
        return False


def pgbouncers_redundant(cfg: cluster.Settings) -> bool:
    return all(_database_answers(cfg, port) for port in cfg.pgbouncer_ports)


def app_servers_redundant(cfg: cluster.Settings) -> bool:
    def live(port: int) -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{port}/health/live", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    return all(live(port) for port in cfg.app_ports)


def lock_nodes_redundant(cfg: cluster.Settings) -> bool:
    def answers(port: int) -> bool:
        client = redis.Redis.from_url(cfg.redis_url(port), socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    return all(answers(port) for port in cfg.lock_redis_ports)


def broker_redundant(cfg: cluster.Settings) -> bool:
    """One broker node is master, the other its replica, and every Sentinel names that master."""
    if sorted(map(str, sentinel.broker_roles(cfg).values())) != [sentinel.MASTER, sentinel.REPLICA]:
        return False
    try:
        sentinel.check_sentinels(cfg)
    except cluster.ClusterError:
        return False
    return True


def edge_pair_redundant(cfg: cluster.Settings) -> bool:
    """One edge is MASTER and the other BACKUP (each keepalived tracks its own NGINX)."""
    roles = cluster.edge_roles(cfg, cluster.services(cfg))
    return sorted(map(str, roles.values())) == ["BACKUP", "MASTER"]


# --- the registry ----------------------------------------------------------------------------------

FAULTS: dict[str, Fault] = {
    fault.name: fault
    for fault in (
        Fault("postgres-leader", "PostgreSQL leader (Patroni and its postmaster)", _kill_postgres_leader,
              postgres_redundant, writes_within=15.0, reads_within=5.0, sends_within=15.0),
        Fault("etcd-member", "one etcd member", _kill_service("etcd2"), etcd_redundant,
              writes_within=0.0, reads_within=0.0, sends_within=0.0),
        Fault("pgbouncer", "one PgBouncer", _kill_service("pgbouncer2"), pgbouncers_redundant,
              writes_within=2.0, reads_within=2.0, sends_within=2.0, in_flight_may_fail=(READ, WRITE)),
        Fault("app-server", "one app server (gunicorn master and workers)", _kill_app_server,
              app_servers_redundant, writes_within=2.0, reads_within=0.0, sends_within=0.0,
              in_flight_may_fail=(WRITE,)),
        Fault("lock-redis", "one lock Redis node", _kill_service("redis-lock-2"), lock_nodes_redundant,
              writes_within=0.0, reads_within=0.0, sends_within=0.0),
        Fault("broker-master", "the broker Redis master (Sentinel promotes the replica)", _kill_broker_master,
              broker_redundant, writes_within=0.0, reads_within=0.0, sends_within=15.0),
        Fault("active-nginx", "the active NGINX with its workers (keepalived moves the address)",
              _kill_active_nginx, edge_pair_redundant, writes_within=2.0, reads_within=2.0, sends_within=0.0),
    )
}  # fmt: skip


def every_process_running(cfg: cluster.Settings) -> list[str]:
    """The cluster's processes that are not running (empty: all are)."""
    return [name for name, pid, _port, _var in cluster.status(cfg) if pid is None]


def full_redundancy(cfg: cluster.Settings, timeout: float = 60.0) -> dict[str, str]:
    """Wait until every etcd member is healthy, one member leads and the other streams from it;
    return the roles by member name."""
    deadline = time.monotonic() + timeout
    while not (etcd_redundant(cfg) and postgres_redundant(cfg)):
        if time.monotonic() > deadline:
            etcd_ok = etcd_redundant(cfg)
            raise AssertionError(
                f"no full redundancy after {timeout:.0f} s: {patroni.roles(cfg)}, etcd ok={etcd_ok}"
            )
        time.sleep(0.5)
    return {name: str(role) for name, role in patroni.roles(cfg).items()}


def verified_redundancy(cfg: cluster.Settings, timeout: float = 60.0) -> dict[str, str]:
    """Every process running and every component of :data:`FAULTS` redundant; the PostgreSQL roles."""
    roles = full_redundancy(cfg, timeout)
    deadline = time.monotonic() + timeout
    while True:
        stopped = every_process_running(cfg)
        lacking = [fault.name for fault in FAULTS.values() if not fault.restored(cfg)]
        if not stopped and not lacking:
            return roles
        if time.monotonic() > deadline:
            raise AssertionError(
                f"not fully redundant after {timeout:.0f} s: stopped {stopped}, lacking {lacking}"
            )
        time.sleep(0.5)


# --- restoring -------------------------------------------------------------------------------------


def restore(cfg: cluster.Settings, fault: Fault, *, timeout: float = REJOIN_WITHIN) -> float:
    """Start what is down through the cluster's tooling and wait for the component to be redundant
    again; return the seconds from the start of ``up`` (AssertionError past ``timeout``)."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "deploy.local.cluster", "up"],
        capture_output=True, text=True, timeout=300, cwd=cluster.REPO, env=dict(os.environ), check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise AssertionError(f"`deploy.local.cluster up` failed: {(result.stderr or result.stdout)[-500:]}")
    while not fault.restored(cfg):
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{fault.name} not redundant {timeout:.0f} s after `up` started")
        time.sleep(0.2)
    took = time.monotonic() - started
    if took > timeout:  # `up` itself took that long
        raise AssertionError(f"{fault.name} redundant again only {took:.0f} s after `up` started")
    return took


# --- what every proof checks -----------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """What became of the acknowledged writes: in the database, and at the provider."""

    acknowledged: int
    missing: list[int]  # acknowledged but not in the database: lost
    unsent: list[int]  # no provider call yet
    duplicated: list[int]  # more than one provider call

    @property
    def problems(self) -> list[str]:
        out = []
        if self.missing:
            out.append(f"{len(self.missing)} acknowledged writes lost: {self.missing[:10]}")
        if self.duplicated:
            out.append(f"{len(self.duplicated)} messages reached the provider twice: {self.duplicated[:10]}")
        if self.unsent:
            out.append(f"{len(self.unsent)} messages never reached the provider: {self.unsent[:10]}")
        return out


DELIVERY_QUERY = """
SELECT m.id, (SELECT count(*) FROM messaging_developmentsms d WHERE d.idempotency_key = %(prefix)s || m.id)
FROM messaging_message m WHERE m.id = ANY(%(ids)s)
"""


def delivery(cfg: cluster.Settings, ids: list[int], *, key_prefix: str) -> Delivery:
    """Check every acknowledged message id on the current leader (``key_prefix``: what the sender
    puts before a message's id in its idempotency key, ``bench.exactly_once.key_prefix()``)."""
    params: dict[str, Any] = {"ids": ids, "prefix": key_prefix}
    with psycopg.connect(
        host="127.0.0.1", port=cfg.pg_primary_port, dbname=cfg.db_name, user=cfg.db_user,
        password=cfg.db_password, autocommit=True, prepare_threshold=None, connect_timeout=5,
    ) as conn:  # fmt: skip
        calls = {int(row[0]): int(row[1]) for row in conn.execute(DELIVERY_QUERY, params)}
    return Delivery(
        acknowledged=len(ids),
        missing=sorted(set(ids) - set(calls)),
        unsent=sorted(i for i, n in calls.items() if n == 0),
        duplicated=sorted(i for i, n in calls.items() if n > 1),
    )


def wait_delivered(
    cfg: cluster.Settings, ids: list[int], *, key_prefix: str, deadline: float
) -> tuple[Delivery, float]:
    """Poll until every acknowledged message reached the provider or ``deadline`` (monotonic)
    passed; the last :class:`Delivery` and when it was taken."""
    while True:
        found = delivery(cfg, ids, key_prefix=key_prefix)
        now = time.monotonic()
        if not found.unsent or now >= deadline:
            return found, now
        time.sleep(min(2.0, max(0.0, deadline - now)))
