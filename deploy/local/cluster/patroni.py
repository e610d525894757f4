"""PostgreSQL under Patroni: three etcd members, two Patroni members and HAProxy, on loopback.

Each member's role is asked of its own REST API (``GET /patroni``), never remembered: after a
failover ``pg1`` may be the replica. ``leader_port`` is where a superuser ``psql`` reaches the
leader over the unix socket (the bootstrap of roles, PgBouncer's auth file, tests).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from deploy.local.cluster.processes import Service, chown_to, recorded_pid, run, stop_service, wait_stopped
from deploy.local.cluster.settings import PG_BIN, PG_USER, ClusterError, Settings
from deploy.patroni.render import (
    EtcdMember,
    Member,
    PatroniValues,
    haproxy_values,
    render_etcd,
    render_haproxy,
    render_patroni,
)

SCOPE = "app-db"
LEADER = "leader"
REPLICA = "replica"


def etcd_members(cfg: Settings) -> list[EtcdMember]:
    return [
        EtcdMember(name, "127.0.0.1", client, peer)
        for name, client, peer in zip(
            cfg.etcd_member_names, cfg.etcd_client_ports, cfg.etcd_peer_ports, strict=False
        )
    ]


def pg_members(cfg: Settings) -> list[Member]:
    return [
        Member(name, "127.0.0.1", pg_port, rest_port)
        for name, pg_port, rest_port in zip(
            cfg.pg_member_names, cfg.pg_member_ports, cfg.patroni_rest_ports, strict=True
        )
    ]


def member(cfg: Settings, name: str) -> Member:
    return next(m for m in pg_members(cfg) if m.name == name)


def data_dir(cfg: Settings, name: str) -> Path:
    return cfg.state_dir / "pg" / name


def etcd_config_file(cfg: Settings, name: str) -> Path:
    return cfg.state_dir / "etcd" / f"{name}.yml"


def patroni_config_file(cfg: Settings, name: str) -> Path:
    return cfg.state_dir / "patroni" / f"{name}.yml"


def haproxy_config_file(cfg: Settings, name: str = "haproxy") -> Path:
    return cfg.state_dir / name / "haproxy.cfg"


def prepare_etcd(name: str):  # type: ignore[no-untyped-def]
    def prepare(cfg: Settings) -> None:
        members = etcd_members(cfg)
        me = next(m for m in members if m.name == name)
        # The token is the state folder's: two local clusters never take each other's members.
        token = f"{SCOPE}-{cfg.pg_secret('etcd-token')[:12]}"
        render_etcd(me, members, data_dir=cfg.state_dir / "etcd" / name, token=token, tls=None,
                    out=etcd_config_file(cfg, name))  # fmt: skip

    return prepare


def prepare_member(name: str):  # type: ignore[no-untyped-def]
    def prepare(cfg: Settings) -> None:
        check_etcd(cfg)
        folder = data_dir(cfg, name)
        if not folder.exists():  # empty: Patroni runs initdb in it, or a base backup into it
            folder.mkdir(parents=True)
            chown_to(folder, PG_USER)
            folder.chmod(0o700)
        config_dir = patroni_config_file(cfg, name).parent
        config_dir.mkdir(parents=True, exist_ok=True)
        chown_to(config_dir, PG_USER)
        values = PatroniValues(
            scope=SCOPE,
            member=member(cfg, name),
            etcd_hosts=cfg.etcd_endpoints(),
            data_dir=folder,
            bin_dir=PG_BIN,
            pgpass=config_dir / f"{name}.pgpass",
            socket_dir=cfg.run_dir,
            passwords={key: cfg.pg_secret(key) for key in ("superuser", "replication", "rewind", "restapi")},
            # A throwaway loopback cluster: durability against power loss buys nothing here (a
            # killed process loses nothing with fsync off; only the machine's crash would).
            # full_page_writes stays on: pg_rewind needs it.
            parameters={"fsync": "off", "shared_buffers": "128MB"},
        )
        out = render_patroni(values, patroni_config_file(cfg, name))
        chown_to(out, PG_USER)
        out.chmod(0o600)

    return prepare


def prepare_haproxy(name: str, primary_port: int, replica_port: int):  # type: ignore[no-untyped-def]
    """One HAProxy beside each PgBouncer (``haproxy``, ``haproxy2``), each with its own two ports."""

    def prepare(cfg: Settings) -> None:
        values = haproxy_values(members=pg_members(cfg), bind_host="127.0.0.1", primary_port=primary_port,
                                replica_port=replica_port, tls=None)  # fmt: skip
        render_haproxy(values, haproxy_config_file(cfg, name))

    return prepare


def _get_json(url: str, timeout: float = 1.0) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 - http:// built here
            data = json.loads(answer.read())
    except OSError as error:  # refused, timed out, or an HTTP error status (503 carries JSON)
        body = getattr(error, "read", None)
        if body is None:
            return None
        try:
            data = json.loads(body())
        except (ValueError, OSError):
            return None
    return data if isinstance(data, dict) else None


def member_state(cfg: Settings, name: str) -> dict[str, object] | None:
    """What the member's Patroni says of itself (``GET /patroni``), or None when it does not answer."""
    return _get_json(f"http://127.0.0.1:{member(cfg, name).rest_port}/patroni")


def member_role(cfg: Settings, name: str) -> str | None:
    """``leader`` or ``replica`` for a running member, else None (stopped, starting, no answer)."""
    state = member_state(cfg, name)
    if not state or state.get("state") != "running":
        return None
    return LEADER if state.get("role") in ("master", "primary", "leader") else REPLICA


def roles(cfg: Settings) -> dict[str, str | None]:
    return {name: member_role(cfg, name) for name in cfg.pg_member_names}


def leader_name(cfg: Settings) -> str | None:
    leaders = [name for name, role in roles(cfg).items() if role == LEADER]
    return leaders[0] if len(leaders) == 1 else None


def member_with_role(cfg: Settings, role: str) -> str:
    """The member that is ``leader`` (or a ``replica``) now; tests and tools follow roles, not names."""
    found = [name for name, current in roles(cfg).items() if current == role]
    if not found:
        raise ClusterError(f"no PostgreSQL member is {role} (roles: {roles(cfg)})")
    return found[0]


def leader_port(cfg: Settings) -> int:
    name = leader_name(cfg)
    if name is None:
        raise ClusterError(f"no PostgreSQL leader (roles: {roles(cfg)})")
    return member(cfg, name).pg_port


def wait_member_ready(cfg: Settings, name: str, *, alive: Callable[[], bool], timeout: float = 120.0) -> str:
    """Wait until ``name`` leads, or streams from the leader as a replica; return its role."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise ClusterError(f"{name} exited while starting (log: {cfg.log_dir / (name + '.log')})")
        role = member_role(cfg, name)
        if role == LEADER or (role == REPLICA and _streaming(cfg, name)):
            return role
        time.sleep(0.2)
    raise ClusterError(
        f"{name} neither leads nor streams after {timeout:.0f}s (log: {cfg.log_dir / (name + '.log')})"
    )


def wait_member_answering(
    cfg: Settings, name: str, *, alive: Callable[[], bool], timeout: float = 60.0
) -> None:
    """Wait until ``name``'s Patroni answers its REST API (whatever its role so far)."""
    deadline = time.monotonic() + timeout
    log = cfg.log_dir / f"{name}.log"
    while member_state(cfg, name) is None:
        if not alive():
            raise ClusterError(f"{name} exited while starting (log: {log})")
        if time.monotonic() > deadline:
            raise ClusterError(f"{name}'s Patroni did not answer within {timeout:.0f}s (log: {log})")
        time.sleep(0.2)


def _streaming(cfg: Settings, name: str) -> bool:
    """Whether the leader lists ``name`` among its streaming standbys."""
    leader = leader_name(cfg)
    if leader is None:
        return False
    state = member_state(cfg, leader) or {}
    replication = state.get("replication")
    return isinstance(replication, list) and any(
        isinstance(row, dict) and row.get("application_name") == name and row.get("state") == "streaming"
        for row in replication
    )


def patronictl(cfg: Settings, *args: str) -> str:
    """Run ``patronictl`` (as the postgres user, with a member's config) and return its output:
    ``list``, ``switchover``, ``pause``/``resume`` (maintenance mode: Patroni stops acting on the
    members, e.g. it no longer resumes a replica's paused replay)."""
    config = patroni_config_file(cfg, cfg.pg_member_names[0])
    return run(["/usr/bin/patronictl", "-c", str(config), *args], log=cfg.log_dir / "patronictl.log",
               user=PG_USER, step=f"patronictl {' '.join(args)}")  # fmt: skip


def etcd_healthy(endpoint: str) -> bool:
    state = _get_json(f"http://{endpoint}/health", timeout=1.0)
    return bool(state and state.get("health") in ("true", True))


def check_etcd(cfg: Settings, timeout: float = 20.0) -> None:
    """A quorum of etcd answers, or one line naming the endpoints that do not."""
    deadline = time.monotonic() + timeout
    endpoints = cfg.etcd_endpoints()
    while True:
        healthy = [e for e in endpoints if etcd_healthy(e)]
        if len(healthy) > len(endpoints) // 2:
            return
        if time.monotonic() > deadline:
            down = ", ".join(e for e in endpoints if e not in healthy)
            raise ClusterError(f"etcd has no quorum: {down} unreachable or unhealthy after {timeout:.0f}s")
        time.sleep(0.3)


def postmaster_pid(cfg: Settings, name: str) -> int | None:
    """The PID of the member's postmaster, from its data folder, if that process still runs it.

    Patroni starts the postmaster in a session of its own (so PostgreSQL outlives a Patroni
    crash): stopping or killing a member is two PIDs.
    """
    folder = data_dir(cfg, name)
    try:
        pid = int((folder / "postmaster.pid").read_text().splitlines()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
        return None
    return pid if str(folder) in cmdline else None


def stop_orphan_postmaster(cfg: Settings, name: str, timeout: float = 30.0) -> bool:
    """Stop a postmaster whose Patroni is gone (``down`` after a Patroni crash); return whether one ran."""
    pid = postmaster_pid(cfg, name)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)  # fast shutdown
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and postmaster_pid(cfg, name) == pid:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        if postmaster_pid(cfg, name) == pid:
            os.kill(pid, signal.SIGKILL)
    return True


# The local cluster before Patroni: a primary and a replica of its own, by these names.
LEGACY_MEMBERS = {"pg-primary": "primary", "pg-replica": "replica"}


def legacy_data(cfg: Settings) -> Path | None:
    """The data folder of a single-primary cluster from before Patroni, if this state folder has
    one and no Patroni member yet."""
    old = cfg.state_dir / "pg" / "primary"
    has_members = any((data_dir(cfg, name) / "PG_VERSION").exists() for name in cfg.pg_member_names)
    return old if (old / "PG_VERSION").exists() and not has_members else None


def stop_legacy_postgres(cfg: Settings) -> list[str]:
    """Stop the PostgreSQL servers such a cluster started (by their recorded PIDs)."""
    stopped = []
    for name, folder in LEGACY_MEMBERS.items():
        service = Service(name, [], marker=str(cfg.state_dir / "pg" / folder), stop_signal=signal.SIGINT)
        pid = recorded_pid(service, cfg)
        if pid and stop_service(service, cfg):
            wait_stopped(service, cfg, pid, timeout=60)
            stopped.append(name)
    return stopped
