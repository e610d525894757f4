"""The broker Redis under Redis Sentinel: a master and a replica, watched by three Sentinels (ADR 0019).

Sentinel decides who is master, never this module: it promotes the replica when the master is
down for ``DOWN_AFTER_MS`` (2 of 3 Sentinels agreeing) and turns a returning old master into a
replica. This module only starts a node so that it does not contradict them: a node (re)started
while another node is the master starts as that master's replica, so a restarted old master
never comes back as a second, empty master.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from deploy.local.cluster.processes import Service
from deploy.local.cluster.settings import REDIS_USER, ClusterError, Settings
from deploy.redis.acl import (
    acl_lines,
    broker_user,
    replication_user,
    sentinel_client_user,
    sentinel_peer_user,
    sentinel_user,
)

MASTER = "master"
REPLICA = "replica"
BROKER_NODES = ("redis-broker", "redis-broker2")
SENTINEL_PREFIX = "redis-sentinel-"
# The users the nodes and Sentinels know besides the app's (``app``, cfg.redis_password()).
REPLICATION_USER = "replication"
MONITOR_USER = "sentinel"
PEER_USER = "sentinel-peer"
QUORUM = 2  # of three Sentinels agree that the master is down
# Measured here: a SIGKILLed master is replaced in about 2.5 s at 1 s. 1.5 s leaves room for a
# busy machine (two shared cores) to answer a ping late without a needless failover.
DOWN_AFTER_MS = 1500
FAILOVER_TIMEOUT_MS = 10_000
_TIMEOUT = 1.0


def node_ports(cfg: Settings) -> dict[str, int]:
    return dict(zip(BROKER_NODES, (cfg.broker_redis_port, cfg.broker_replica_port), strict=True))


def sentinel_names(cfg: Settings) -> list[str]:
    return [f"{SENTINEL_PREFIX}{i}" for i in range(1, len(cfg.sentinel_ports) + 1)]


def _command(port: int, user: str, password: str, *args: str) -> object:
    """One command to a node or Sentinel on loopback, as that user; a reply or an error raised."""
    client = redis.Redis(
        host="127.0.0.1", port=port, username=user, password=password,
        socket_timeout=_TIMEOUT, socket_connect_timeout=_TIMEOUT, decode_responses=True,
        retry=Retry(NoBackoff(), 0),  # one answer or none: redis-py retries with backoff by default
    )  # fmt: skip
    try:
        return client.execute_command(*args)
    finally:
        client.close()


def sentinel_master(cfg: Settings) -> int | None:
    """The master's port as the first Sentinel that answers names it, or None if none does."""
    for port in cfg.sentinel_ports:
        try:
            reply = _command(
                port, REDIS_USER, cfg.redis_password(),
                "SENTINEL", "GET-MASTER-ADDR-BY-NAME", cfg.broker_sentinel_master,
            )  # fmt: skip
        except redis.RedisError:
            continue
        if isinstance(reply, list) and len(reply) == 2:
            return int(reply[1])
    return None


def node_role(cfg: Settings, port: int) -> str | None:
    """``master`` or ``replica`` as the node itself says (``ROLE``), or None if it does not answer."""
    try:
        reply = _command(port, MONITOR_USER, cfg.redis_secret(MONITOR_USER), "ROLE")
    except redis.RedisError:
        return None
    if not isinstance(reply, list) or not reply:
        return None
    return MASTER if reply[0] == "master" else REPLICA


def broker_roles(cfg: Settings) -> dict[str, str | None]:
    return {name: node_role(cfg, port) for name, port in node_ports(cfg).items()}


def master_port(cfg: Settings) -> int | None:
    """Where the broker's master is now: as the Sentinels say, else the one node that says it is."""
    port = sentinel_master(cfg)
    if port is not None:
        return port
    masters = [port for port in node_ports(cfg).values() if node_role(cfg, port) == MASTER]
    return masters[0] if len(masters) == 1 else None


def master_url(cfg: Settings, db: int = 0) -> str:
    """The current master's URL with the app's credentials (tests and tools that write to it)."""
    port = master_port(cfg)
    if port is None:
        raise ClusterError(f"no broker Redis master (roles: {broker_roles(cfg)})")
    return cfg.redis_url(port, db)


def _node_conf(cfg: Settings, name: str) -> str:
    users = [
        broker_user(REDIS_USER, cfg.redis_password()),
        replication_user(REPLICATION_USER, cfg.redis_secret(REPLICATION_USER)),
        sentinel_user(MONITOR_USER, cfg.redis_secret(MONITOR_USER)),
    ]
    lines = [f"masteruser {REPLICATION_USER}", f"masterauth {cfg.redis_secret(REPLICATION_USER)}"]
    own = node_ports(cfg)[name]
    master = master_port(cfg)
    if master is None and name != BROKER_NODES[0]:
        master = cfg.broker_redis_port  # a first start: the first node is the master
    if master is not None and master != own:
        lines.append(f"replicaof 127.0.0.1 {master}")
    return acl_lines(users) + "".join(f"{line}\n" for line in lines)


def prepare_node(folder: Path, name: str) -> Callable[[Settings], None]:
    def make(cfg: Settings) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        conf = folder / "redis.conf"
        conf.write_text(_node_conf(cfg, name))
        conf.chmod(0o600)

    return make


def _sentinel_conf(cfg: Settings, port: int) -> str:
    name = cfg.broker_sentinel_master
    master = master_port(cfg) or cfg.broker_redis_port
    users = [
        sentinel_client_user(REDIS_USER, cfg.redis_password()),
        sentinel_peer_user(PEER_USER, cfg.redis_secret(PEER_USER)),
    ]
    lines = [
        f"port {port}",
        "bind 127.0.0.1",
        f"sentinel sentinel-user {PEER_USER}",
        f"sentinel sentinel-pass {cfg.redis_secret(PEER_USER)}",
        f"sentinel monitor {name} 127.0.0.1 {master} {QUORUM}",
        f"sentinel auth-user {name} {MONITOR_USER}",
        f"sentinel auth-pass {name} {cfg.redis_secret(MONITOR_USER)}",
        f"sentinel down-after-milliseconds {name} {DOWN_AFTER_MS}",
        f"sentinel failover-timeout {name} {FAILOVER_TIMEOUT_MS}",
        f"sentinel parallel-syncs {name} 1",
    ]
    return acl_lines(users) + "".join(f"{line}\n" for line in lines)


def prepare_sentinel(folder: Path, port: int) -> Callable[[Settings], None]:
    # Written afresh at every start, monitoring the master of now: Sentinel rewrites this file
    # with what it learns (replicas, peers, epochs), which a restarted Sentinel learns again.
    def make(cfg: Settings) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        conf = folder / "sentinel.conf"
        conf.write_text(_sentinel_conf(cfg, port))
        conf.chmod(0o600)

    return make


def broker_services(cfg: Settings) -> list[Service]:
    """The two broker nodes, then the Sentinels (which need a master to monitor)."""
    table = []
    for (name, port), var in zip(
        node_ports(cfg).items(), ("BROKER_REDIS_PORT", "BROKER_REDIS_REPLICA_PORT"), strict=True
    ):
        folder = cfg.state_dir / name
        argv = ["/usr/bin/redis-server", str(folder / "redis.conf"), "--bind", "127.0.0.1",
                "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(folder),
                "--daemonize", "no"]  # fmt: skip
        table.append(Service(name, argv, port=port, port_var=var, marker=f":{port}",
                             prepare=prepare_node(folder, name)))  # fmt: skip
    for name, port in zip(sentinel_names(cfg), cfg.sentinel_ports, strict=True):
        folder = cfg.state_dir / name
        conf = folder / "sentinel.conf"
        argv = ["/usr/bin/redis-server", str(conf), "--sentinel", "--dir", str(folder), "--daemonize", "no"]
        # Sentinel renames its process "redis-server 127.0.0.1:PORT [sentinel]": the port is the mark.
        table.append(Service(name, argv, port=port, port_var="SENTINEL_PORTS", marker=f":{port}",
                             prepare=prepare_sentinel(folder, port)))  # fmt: skip
    return table


def check_sentinels(cfg: Settings) -> str:
    """Every Sentinel names a master for ``BROKER_SENTINEL_MASTER`` and that master answers as
    one; otherwise one line naming what is wrong. Returns the master's address."""
    name = cfg.broker_sentinel_master
    answers: dict[int, str] = {}
    for port in cfg.sentinel_ports:
        try:
            reply = _command(
                port, REDIS_USER, cfg.redis_password(), "SENTINEL", "GET-MASTER-ADDR-BY-NAME", name
            )
        except (redis.RedisError, OSError) as error:
            raise ClusterError(f"Sentinel 127.0.0.1:{port} does not answer: {error}") from None
        if reply is None:
            raise ClusterError(
                f"BROKER_SENTINEL_MASTER={name!r}: Sentinel 127.0.0.1:{port} monitors no master of that name"
            )
        answers[port] = f"{reply[0]}:{reply[1]}"  # type: ignore[index]
    if len(set(answers.values())) != 1:
        raise ClusterError(f"the Sentinels disagree on the broker's master: {answers}")
    address = next(iter(answers.values()))
    if node_role(cfg, int(address.rsplit(":", 1)[1])) != MASTER:
        raise ClusterError(f"the Sentinels name {address} the broker's master, but it is not one")
    return f"{name} at {address}"
