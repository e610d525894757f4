"""PostgreSQL with automatic failover: Patroni members over etcd, HAProxy routing to the leader.

One builder for the local cluster and ``manage.py render_deploy patroni``: the failover timing
(``ttl: 10, loop_wait: 1, retry_timeout: 4``), synchronous replication (non-strict), failsafe
mode and ``pg_rewind`` are the same everywhere; only addresses, TLS and credentials differ.
A production rendering (``tls`` set) makes etcd demand client certificates, Patroni's REST API
demand TLS and a password for its unsafe endpoints, and replication use TLS (``verify-full``).
Passwords never appear in a rendered file: Patroni reads them from its environment
(``PATRONI_SUPERUSER_PASSWORD``, ``PATRONI_REPLICATION_PASSWORD``, ``PATRONI_REWIND_PASSWORD``,
``PATRONI_RESTAPI_PASSWORD``);
the local cluster, which has no secret store, writes them into its own files (mode 0600).
Why this shape: docs/adr/0017-postgresql-failover.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deploy.render import render_file

HAPROXY_TEMPLATE = Path(__file__).resolve().parent / "haproxy.cfg.template"

SUPERUSER = "postgres"
REPLICATION_USER = "replicator"
# pg_rewind's own user (Patroni grants it the four functions pg_rewind calls): the rejoin of an
# old leader needs no superuser password on the network.
REWIND_USER = "rewinder"

# Measured (shared DESIGN facts): SIGKILL of the leader member -> writes on the other in 9.9 s.
DCS_TIMING = {"ttl": 10, "loop_wait": 1, "retry_timeout": 4}


class PatroniConfigError(ValueError):
    """A value Patroni, etcd or HAProxy would refuse or that would quietly weaken it; names its variable."""


@dataclass(frozen=True)
class Member:
    """One PostgreSQL member as the others (and HAProxy) reach it."""

    name: str
    host: str
    pg_port: int
    rest_port: int


@dataclass(frozen=True)
class TlsFiles:
    """One CA and this host's certificate and key, used for etcd, the REST API and replication."""

    ca_file: str
    cert_file: str
    key_file: str


@dataclass(frozen=True)
class PatroniValues:
    scope: str
    member: Member
    etcd_hosts: list[str]  # host:port of every etcd member's client URL
    data_dir: Path
    bin_dir: Path
    pgpass: Path
    socket_dir: Path
    # The network replication and the app's connections come from (pg_hba).
    client_network: str = "127.0.0.1/32"
    tls: TlsFiles | None = None
    # Local cluster only: credentials written into the file (production: the environment).
    passwords: dict[str, str] = field(default_factory=dict)
    rest_username: str = "patroni"
    # Extra server parameters (the local cluster turns fsync off: a throwaway loopback cluster).
    parameters: dict[str, Any] = field(default_factory=dict)
    log_dir: Path | None = None


def patroni_config(v: PatroniValues) -> dict[str, Any]:
    """The member's ``patroni.yml`` as a dict."""
    member, tls = v.member, v.tls
    restapi: dict[str, Any] = {
        "listen": f"{member.host}:{member.rest_port}",
        "connect_address": f"{member.host}:{member.rest_port}",
        # Unsafe endpoints (switchover, restart, reinit, config) need this user; GET /primary and
        # /replica, which HAProxy asks, stay open.
        "authentication": {"username": v.rest_username},
    }
    etcd3: dict[str, Any] = {"hosts": v.etcd_hosts, "protocol": "https" if tls else "http"}
    superuser: dict[str, Any] = {"username": SUPERUSER}
    replication: dict[str, Any] = {"username": REPLICATION_USER}
    rewind: dict[str, Any] = {"username": REWIND_USER}
    parameters: dict[str, Any] = {"unix_socket_directories": str(v.socket_dir), **v.parameters}
    hba_host = "hostssl" if tls else "host"
    pg_hba = [
        f"local all {SUPERUSER} peer",
        f"{hba_host} replication {REPLICATION_USER} {v.client_network} scram-sha-256",
        f"{hba_host} all all {v.client_network} scram-sha-256",
    ]
    if tls:
        restapi.update(certfile=tls.cert_file, keyfile=tls.key_file, cafile=tls.ca_file)
        etcd3.update(cacert=tls.ca_file, cert=tls.cert_file, key=tls.key_file)
        parameters.update(
            ssl="on", ssl_cert_file=tls.cert_file, ssl_key_file=tls.key_file, ssl_ca_file=tls.ca_file
        )
        # The standby checks the leader's certificate (and the leader's name in it).
        tls_client = {"sslmode": "verify-full", "sslrootcert": tls.ca_file}
        for user in (replication, rewind, superuser):
            user.update(tls_client)
        pg_hba.append("host all all 0.0.0.0/0 reject")
    if "superuser" in v.passwords:
        superuser["password"] = v.passwords["superuser"]
        replication["password"] = v.passwords["replication"]
        rewind["password"] = v.passwords["rewind"]
        restapi["authentication"]["password"] = v.passwords["restapi"]
    config: dict[str, Any] = {
        "scope": v.scope,
        "namespace": "/service/",
        "name": member.name,
        "restapi": restapi,
        "ctl": {"cacert": tls.ca_file} if tls else {},
        "etcd3": etcd3,
        "bootstrap": {
            "dcs": {
                **DCS_TIMING,
                "maximum_lag_on_failover": 1048576,
                # Every commit waits for the standby; a lone survivor still takes writes (the
                # non-strict trade-off, ADR 0017).
                "synchronous_mode": True,
                "synchronous_mode_strict": False,
                # etcd quorum lost: the leader stays leader while every member answers it.
                "failsafe_mode": True,
                "postgresql": {
                    "use_pg_rewind": True,
                    "use_slots": True,
                    "parameters": {
                        "wal_level": "replica",
                        "hot_standby": "on",
                        "wal_log_hints": "on",
                        "max_connections": 200,
                        "max_wal_senders": 10,
                        "max_replication_slots": 10,
                        "hot_standby_feedback": "on",
                        "wal_receiver_status_interval": "1s",
                        "synchronous_commit": "on",
                        "timezone": "UTC",
                        "log_timezone": "UTC",
                    },
                },
            },
            "initdb": [{"encoding": "UTF8"}, {"locale": "C"}, "data-checksums"],
        },
        "postgresql": {
            "listen": f"{member.host}:{member.pg_port}",
            "connect_address": f"{member.host}:{member.pg_port}",
            "data_dir": str(v.data_dir),
            "bin_dir": str(v.bin_dir),
            "pgpass": str(v.pgpass),
            "use_unix_socket": True,
            "authentication": {"superuser": superuser, "replication": replication, "rewind": rewind},
            "parameters": parameters,
            "pg_hba": pg_hba,
        },
        "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False, "nosync": False},
    }
    if v.log_dir is not None:
        config["log"] = {"level": "INFO", "dir": str(v.log_dir)}
    return config


def render_patroni(v: PatroniValues, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    header = f"# Patroni member {v.member.name} of {v.scope} (deploy/patroni/render.py).\n"
    out.write_text(header + yaml.safe_dump(patroni_config(v), sort_keys=False, width=120))
    return out


@dataclass(frozen=True)
class EtcdMember:
    name: str
    host: str
    client_port: int
    peer_port: int


def etcd_config(me: EtcdMember, members: list[EtcdMember], *, data_dir: Path, token: str,
                tls: TlsFiles | None) -> dict[str, Any]:  # fmt: skip
    """One etcd member's ``--config-file``: a static three-member cluster."""
    scheme = "https" if tls else "http"
    config: dict[str, Any] = {
        "name": me.name,
        "data-dir": str(data_dir),
        "listen-client-urls": f"{scheme}://{me.host}:{me.client_port}",
        "advertise-client-urls": f"{scheme}://{me.host}:{me.client_port}",
        "listen-peer-urls": f"{scheme}://{me.host}:{me.peer_port}",
        "initial-advertise-peer-urls": f"{scheme}://{me.host}:{me.peer_port}",
        "initial-cluster": ",".join(f"{m.name}={scheme}://{m.host}:{m.peer_port}" for m in members),
        "initial-cluster-state": "new",
        "initial-cluster-token": token,
        # A short heartbeat and election: a lost member is noticed quickly, well inside Patroni's
        # retry_timeout (4 s).
        "heartbeat-interval": 100,
        "election-timeout": 1000,
        # A config file leaves every unnamed switch off; Patroni speaks to etcd through this.
        "enable-grpc-gateway": True,
        "log-level": "warn",
        "logger": "zap",
    }
    if tls:
        # Only holders of a certificate from this CA (Patroni, the other members) get in.
        security = {"cert-file": tls.cert_file, "key-file": tls.key_file,
                    "trusted-ca-file": tls.ca_file, "client-cert-auth": True}  # fmt: skip
        config["client-transport-security"] = security
        config["peer-transport-security"] = dict(security)
    return config


def render_etcd(me: EtcdMember, members: list[EtcdMember], *, data_dir: Path, token: str,
                tls: TlsFiles | None, out: Path) -> Path:  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    header = f"# etcd member {me.name} (deploy/patroni/render.py); start: etcd --config-file {out}\n"
    config = etcd_config(me, members, data_dir=data_dir, token=token, tls=tls)
    out.write_text(header + yaml.safe_dump(config, sort_keys=False, width=120))
    return out


def haproxy_values(*, members: list[Member], bind_host: str, primary_port: int, replica_port: int,
                   tls: TlsFiles | None) -> dict[str, object]:  # fmt: skip
    """HAProxy's ports: one to the member whose REST API says ``/primary``, one to ``/replica``."""
    check = "check"
    if tls:
        check += f" check-ssl verify required ca-file {tls.ca_file}"
    servers = "\n".join(
        f"    server {m.name} {m.host}:{m.pg_port} {check} port {m.rest_port}" for m in members
    )
    ports = {"primary_port": primary_port, "replica_port": replica_port}
    return {"bind_host": bind_host, **ports, "servers": servers}


def render_haproxy(values: dict[str, object], out: Path) -> Path:
    return render_file(HAPROXY_TEMPLATE, values, out)
