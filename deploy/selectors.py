"""Read the values each deployment template needs from settings (which read the environment)."""

import ipaddress
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from deploy.patroni.render import (
    EtcdMember,
    Member,
    PatroniConfigError,
    PatroniValues,
    TlsFiles,
    haproxy_values,
)
from deploy.pgbouncer.render import PgBouncerValues
from deploy.render import MissingTemplateValue

# Values only the deployment knows: setting -> the environment variable that sets it. No default
# exists for them (config/settings/components/deploy.py); a loopback guess in a production config
# file would start and then fail far from its cause.
REQUIRED = {
    "DEPLOY_PG_PRIMARY_HOST": "PG_PRIMARY_HOST",
    "DEPLOY_PG_REPLICA_HOST": "DB_REPLICA_HOST",
    "DEPLOY_PGBOUNCER_AUTH_FILE": "PGBOUNCER_AUTH_FILE",
    "DEPLOY_GUNICORN_BIND": "DEPLOY_GUNICORN_BIND",
    "DEPLOY_LIVE_BIND": "DEPLOY_LIVE_BIND",
    "DEPLOY_IMAGE": "DEPLOY_IMAGE",
    "DEPLOY_NAMESPACE": "DEPLOY_NAMESPACE",
    "DEPLOY_INGRESS_PROXIES": "DEPLOY_INGRESS_PROXIES",
    "DEPLOY_PGBOUNCER_IMAGE": "DEPLOY_PGBOUNCER_IMAGE",
    "DEPLOY_PGBOUNCER_EXPORTER_IMAGE": "DEPLOY_PGBOUNCER_EXPORTER_IMAGE",
}
# A trusted proxy network larger than this would be a pod network, not the controller's pool:
# every pod in it could claim any client address.
MAX_TRUSTED_PROXY_ADDRESSES = 4096


# Where the PgBouncer pod mounts the Secret `pgbouncer-tls` (deploy/k8s/base/pgbouncer-deployment.yaml).
K8S_PGBOUNCER_TLS_DIR = "/etc/pgbouncer-tls"
# The database's Services on Kubernetes: CloudNativePG names them after the Cluster (`postgres`):
# `-rw` follows the primary, `-ro` the replicas (deploy/k8s/postgres/cluster.yaml).
K8S_PRIMARY_SERVICE = "postgres-rw"
K8S_REPLICA_SERVICE = "postgres-ro"


class UnsafeDeployValue(ValueError):
    """A value that would weaken the deployment; the message names its variable."""


class MissingDeployVariable(MissingTemplateValue):
    """A production template needs a value the environment did not give."""


def _required(*names: str) -> dict[str, Any]:
    """The settings' values, or one error naming every variable still to set."""
    values = {name: getattr(settings, name, None) for name in names}
    missing = [REQUIRED[name] for name, value in values.items() if value in (None, "")]
    if missing:
        raise MissingDeployVariable(
            f"set {', '.join(missing)} in the environment: production values are never guessed"
        )
    return values


def nginx_app_servers_given() -> None:
    """The edge's upstreams (app and live-update servers) and the host it serves (its redirects
    name it, other hosts are refused) are the NGINX values without a production meaning by default."""
    missing = [
        name
        for name in ("NGINX_SERVER_NAME", "NGINX_APP_SERVERS", "NGINX_WEBSOCKET_SERVERS")
        if not os.environ.get(name, "").strip()
    ]
    if missing:
        raise MissingDeployVariable(
            f"set {', '.join(missing)} in the environment: production values are never guessed"
        )


def drain_seconds() -> int:
    """How long a stopping web server keeps answering (readiness 503) before gunicorn stops."""
    return math.ceil(settings.DEPLOY_DRAIN_SECONDS)


def graceful_timeout_seconds() -> int:
    """gunicorn's ``graceful_timeout``: how long workers get to finish in-flight requests."""
    return int(settings.DEPLOY_GUNICORN_GRACEFUL_TIMEOUT)


def web_stop_timeout_seconds() -> int:
    """What a supervisor (systemd, Kubernetes) waits before SIGKILL: drain, then graceful, then margin."""
    return drain_seconds() + graceful_timeout_seconds() + 15


def pgbouncer_values() -> PgBouncerValues:
    given = _required("DEPLOY_PG_PRIMARY_HOST", "DEPLOY_PG_REPLICA_HOST", "DEPLOY_PGBOUNCER_AUTH_FILE")
    return PgBouncerValues(
        db_name=settings.DB_NAME,
        primary_host=given["DEPLOY_PG_PRIMARY_HOST"],
        primary_port=settings.DEPLOY_PG_PRIMARY_PORT,
        replica_host=given["DEPLOY_PG_REPLICA_HOST"],
        replica_port=settings.DEPLOY_PG_REPLICA_PORT,
        listen_addr=settings.DEPLOY_PGBOUNCER_LISTEN_ADDR,
        listen_port=settings.DEPLOY_PGBOUNCER_PORT,
        auth_file=Path(given["DEPLOY_PGBOUNCER_AUTH_FILE"]),
        default_pool_size=settings.DEPLOY_PGBOUNCER_POOL_SIZE,
        max_client_conn=settings.DEPLOY_PGBOUNCER_MAX_CLIENT_CONN,
        max_db_connections=settings.DEPLOY_PGBOUNCER_MAX_DB_CONNECTIONS,
        **pgbouncer_security_values(),
    )


def pgbouncer_security_values() -> dict[str, Any]:
    """Timeouts, TLS and the catch-all switch of a VM's PgBouncer (a pod's TLS is fixed below)."""
    return {
        "query_timeout": settings.DEPLOY_PGBOUNCER_QUERY_TIMEOUT,
        "catch_all": settings.DEPLOY_PGBOUNCER_CATCH_ALL,
        "client_tls_sslmode": settings.DEPLOY_PGBOUNCER_CLIENT_TLS_SSLMODE,
        "client_tls_cert_file": settings.DEPLOY_PGBOUNCER_CLIENT_TLS_CERT_FILE,
        "client_tls_key_file": settings.DEPLOY_PGBOUNCER_CLIENT_TLS_KEY_FILE,
        "server_tls_sslmode": settings.DEPLOY_PGBOUNCER_SERVER_TLS_SSLMODE,
        "server_tls_ca_file": settings.DEPLOY_PGBOUNCER_SERVER_TLS_CA_FILE,
    }


def live_stop_timeout_seconds() -> int:
    """What a supervisor waits before SIGKILL for a live-update server: its drain, uvicorn's 5 s
    shutdown, a margin."""
    return math.ceil(settings.DEPLOY_LIVE_DRAIN_SECONDS) + 5 + 10


def systemd_values() -> dict[str, object]:
    _required("DEPLOY_GUNICORN_BIND", "DEPLOY_LIVE_BIND")
    return {
        "app_dir": settings.DEPLOY_APP_DIR,
        "venv": settings.DEPLOY_VENV,
        "user": settings.DEPLOY_SERVICE_USER,
        "env_file": settings.DEPLOY_ENV_FILE,
        "gunicorn_bind": settings.DEPLOY_GUNICORN_BIND,
        "celery_concurrency": settings.DEPLOY_CELERY_CONCURRENCY,
        "web_timeout_stop_sec": web_stop_timeout_seconds(),
        "worker_timeout_stop_sec": settings.DEPLOY_WORKER_STOP_TIMEOUT,
        "live_bind": settings.DEPLOY_LIVE_BIND,
        "live_timeout_stop_sec": live_stop_timeout_seconds(),
    }


def k8s_pgbouncer_values() -> PgBouncerValues:
    """PgBouncer in a pod: the database is reached by the Services that follow its roles (the
    CloudNativePG Cluster's, or the managed database's of the same names: deploy/k8s/README.md)."""
    return PgBouncerValues(
        db_name=settings.DB_NAME,
        primary_host=K8S_PRIMARY_SERVICE,
        primary_port=5432,
        replica_host=K8S_REPLICA_SERVICE,
        replica_port=5432,
        listen_addr="0.0.0.0",  # noqa: S104 - inside a pod; the NetworkPolicy decides who connects
        listen_port=6432,
        auth_file=Path("/etc/pgbouncer-auth/userlist.txt"),
        **{
            **pgbouncer_security_values(),
            # Reached over the pod network: TLS both ways, from the Secret `pgbouncer-tls`
            # (tls.crt/tls.key PgBouncer's own, ca.crt the database's CA).
            "client_tls_sslmode": "require",
            "client_tls_cert_file": f"{K8S_PGBOUNCER_TLS_DIR}/tls.crt",
            "client_tls_key_file": f"{K8S_PGBOUNCER_TLS_DIR}/tls.key",
            "server_tls_sslmode": "verify-full",
            "server_tls_ca_file": f"{K8S_PGBOUNCER_TLS_DIR}/ca.crt",
        },
    )


# The Redis users' names (with defaults) and passwords (none): the same variables the app reads.
REDIS_USER_VARIABLES = {
    "lock": ("LOCK_REDIS_USERNAME", None, "LOCK_REDIS_PASSWORD"),
    "broker": ("BROKER_REDIS_USERNAME", None, "BROKER_REDIS_PASSWORD"),
    "replication": ("REDIS_REPLICATION_USERNAME", "replication", "REDIS_REPLICATION_PASSWORD"),
    "sentinel": ("REDIS_SENTINEL_USERNAME", "sentinel", "REDIS_SENTINEL_PASSWORD"),
}


def redis_users() -> dict[str, tuple[str, str]]:
    """Each Redis role's user name and password from the environment; one error naming every
    variable still to set (an app user named ``default`` counts as unset: that user stays off)."""
    users, missing = {}, []
    for role, (name_variable, default, password_variable) in REDIS_USER_VARIABLES.items():
        name = os.environ.get(name_variable, "").strip() or default
        password = os.environ.get(password_variable, "")
        if not name or name == "default":
            missing.append(name_variable)
        if not password:
            missing.append(password_variable)
        users[role] = (name or "", password)
    if missing:
        raise MissingDeployVariable(
            f"set {', '.join(missing)} in the environment: production values are never guessed"
        )
    return users


def lock_key_prefix() -> str:
    return str(settings.LOCK_KEY_PREFIX)


# An image named by its content: repository[:tag]@sha256:<64 hex digits>.
_IMAGE_BY_DIGEST = re.compile(
    r"^(?P<repository>[^\s@:]+(?::\d+)?(?:/[^\s@:]+)*)(?::[\w.-]+)?@(?P<digest>sha256:[0-9a-f]{64})$"
)
K8S_IMAGES = {
    "app": "DEPLOY_IMAGE",
    "pgbouncer": "DEPLOY_PGBOUNCER_IMAGE",
    "pgbouncer-exporter": "DEPLOY_PGBOUNCER_EXPORTER_IMAGE",
}


def image_by_digest(variable: str, image: str) -> tuple[str, str]:
    """(repository, digest) of an image named by its digest; a tag alone is refused: it can be
    pointed at other contents after the release was reviewed."""
    match = _IMAGE_BY_DIGEST.match(image.strip())
    if not match:
        raise UnsafeDeployValue(
            f"{variable}={image!r} names no digest: give repository@sha256:<digest> (a tag can move)"
        )
    return match["repository"], match["digest"]


def k8s_values() -> dict[str, Any]:
    given = _required(
        "DEPLOY_IMAGE",
        "DEPLOY_NAMESPACE",
        "DEPLOY_INGRESS_PROXIES",
        "DEPLOY_PGBOUNCER_IMAGE",
        "DEPLOY_PGBOUNCER_EXPORTER_IMAGE",
    )
    return {
        "images": {
            name: image_by_digest(REQUIRED[setting], given[setting]) for name, setting in K8S_IMAGES.items()
        },
        "redis_namespace": settings.DEPLOY_REDIS_NAMESPACE,
        "namespace": given["DEPLOY_NAMESPACE"],
        "admin_public": bool(settings.DEPLOY_ADMIN_PUBLIC),
        "ingress_proxies": ingress_proxy_networks(given["DEPLOY_INGRESS_PROXIES"]),
    }


def ingress_proxy_networks(text: str) -> str:
    """The controller's pod addresses as a comma-separated list, refused when one of them is
    not a network or is big enough to be a whole pod network."""
    networks = []
    for part in (part.strip() for part in text.split(",") if part.strip()):
        try:
            network = ipaddress.ip_network(part, strict=False)
        except ValueError:
            raise UnsafeDeployValue(f"DEPLOY_INGRESS_PROXIES: {part!r} is not an address or CIDR") from None
        if network.num_addresses > MAX_TRUSTED_PROXY_ADDRESSES:
            raise UnsafeDeployValue(
                f"DEPLOY_INGRESS_PROXIES: {network} holds {network.num_addresses} addresses; name the "
                f"ingress controller's own pool (at most {MAX_TRUSTED_PROXY_ADDRESSES}), not a pod network"
            )
        networks.append(str(network))
    if not networks:
        raise UnsafeDeployValue("DEPLOY_INGRESS_PROXIES names no network")
    return ",".join(networks)


@dataclass(frozen=True)
class PatroniRendering:
    """What ``render_deploy patroni`` writes on one host: its Patroni member and etcd member (if
    it runs them) and HAProxy (every app server, beside PgBouncer)."""

    patroni: PatroniValues | None
    etcd_me: EtcdMember | None
    etcd_members: list[EtcdMember]
    etcd_token: str
    haproxy: dict[str, object]
    tls: TlsFiles


def _named_hosts(variable: str, entries: list[str]) -> list[tuple[str, str]]:
    pairs = [entry.partition("=") for entry in entries]
    if not pairs or any(not name or not sep or not host for name, sep, host in pairs):
        raise PatroniConfigError(f"{variable} must list members as name=address, comma-separated")
    return [(name.strip(), host.strip()) for name, _, host in pairs]


def patroni_rendering() -> PatroniRendering:
    """Production values: TLS everywhere, nothing guessed, no password in any file."""
    needed = {
        "PATRONI_MEMBERS": settings.DEPLOY_PATRONI_MEMBERS,
        "ETCD_MEMBERS": settings.DEPLOY_ETCD_MEMBERS,
        "PATRONI_TLS_CA_FILE": settings.DEPLOY_PATRONI_TLS_CA_FILE,
        "PATRONI_TLS_CERT_FILE": settings.DEPLOY_PATRONI_TLS_CERT_FILE,
        "PATRONI_TLS_KEY_FILE": settings.DEPLOY_PATRONI_TLS_KEY_FILE,
    }
    if settings.DEPLOY_PATRONI_NAME:
        needed["PATRONI_CLIENT_NETWORK"] = settings.DEPLOY_PATRONI_CLIENT_NETWORK
    missing = [name for name, value in needed.items() if not value]
    if missing:
        raise MissingDeployVariable(
            f"set {', '.join(missing)} in the environment: production values are never guessed"
        )
    tls = TlsFiles(
        ca_file=settings.DEPLOY_PATRONI_TLS_CA_FILE,
        cert_file=settings.DEPLOY_PATRONI_TLS_CERT_FILE,
        key_file=settings.DEPLOY_PATRONI_TLS_KEY_FILE,
    )
    # The packages' standard ports: PostgreSQL 5432, Patroni's REST API 8008, etcd 2379/2380.
    pg_hosts = _named_hosts("PATRONI_MEMBERS", settings.DEPLOY_PATRONI_MEMBERS)
    members = [Member(name, host, 5432, 8008) for name, host in pg_hosts]
    etcd_hosts = _named_hosts("ETCD_MEMBERS", settings.DEPLOY_ETCD_MEMBERS)
    etcd = [EtcdMember(name, host, 2379, 2380) for name, host in etcd_hosts]
    if len(etcd) < 3 or len(etcd) % 2 == 0:
        raise PatroniConfigError(f"ETCD_MEMBERS names {len(etcd)} members: use an odd number, at least 3")
    patroni = None
    if settings.DEPLOY_PATRONI_NAME:
        me = next((m for m in members if m.name == settings.DEPLOY_PATRONI_NAME), None)
        if me is None:
            name = settings.DEPLOY_PATRONI_NAME
            raise PatroniConfigError(f"PATRONI_NAME={name!r} is not in PATRONI_MEMBERS")
        data_dir = Path(settings.DEPLOY_PATRONI_DATA_DIR)
        patroni = PatroniValues(
            scope=settings.DEPLOY_PATRONI_SCOPE,
            member=me,
            etcd_hosts=[f"{m.host}:{m.client_port}" for m in etcd],
            data_dir=data_dir,
            bin_dir=Path("/usr/lib/postgresql/15/bin"),
            pgpass=data_dir.parent / "patroni.pgpass",
            socket_dir=Path("/var/run/postgresql"),
            client_network=settings.DEPLOY_PATRONI_CLIENT_NETWORK,
            tls=tls,
        )
    etcd_me = None
    if settings.DEPLOY_ETCD_NAME:
        etcd_me = next((m for m in etcd if m.name == settings.DEPLOY_ETCD_NAME), None)
        if etcd_me is None:
            raise PatroniConfigError(f"ETCD_NAME={settings.DEPLOY_ETCD_NAME!r} is not in ETCD_MEMBERS")
    haproxy = haproxy_values(
        members=members,
        bind_host="127.0.0.1",
        primary_port=settings.DEPLOY_HAPROXY_PRIMARY_PORT,
        replica_port=settings.DEPLOY_HAPROXY_REPLICA_PORT,
        tls=tls,
    )
    return PatroniRendering(
        patroni=patroni,
        etcd_me=etcd_me,
        etcd_members=etcd,
        etcd_token=f"{settings.DEPLOY_PATRONI_SCOPE}-etcd",
        haproxy=haproxy,
        tls=tls,
    )
