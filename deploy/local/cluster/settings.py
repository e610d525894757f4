"""The cluster's settings: ports, paths and credentials from the environment, with local defaults."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


PG_USER = "postgres"
REDIS_USER = "app"


class ClusterError(RuntimeError):
    """A step failed; the message says which and where its log is."""


def _ports(var: str, default: str) -> list[int]:
    raw = os.environ.get(var, default)
    try:
        return [int(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        raise ClusterError(f"{var}={raw!r} is not a comma-separated list of port numbers") from None


EDGES = ("a", "b")
_PREFIX = re.compile(r"^[a-z][a-z0-9-]{0,11}$")  # "<prefix>-br" fits a 15-character link name
OUTSIDE_CLIENTS_FROM = 128


@dataclass(frozen=True)
class EdgeNetwork:
    """Names and addresses of one cluster's edge network, from its settings."""

    prefix: str
    subnet: ipaddress.IPv4Network

    @classmethod
    def of(cls, cfg: Settings) -> EdgeNetwork:
        if not _PREFIX.fullmatch(cfg.edge_netns_prefix):
            raise ClusterError(
                f"EDGE_NETNS_PREFIX={cfg.edge_netns_prefix!r} is not 1-12 characters of a-z 0-9 - "
                "starting with a letter"
            )
        try:
            subnet = ipaddress.IPv4Network(cfg.edge_subnet)
        except ValueError:
            raise ClusterError(
                f"EDGE_SUBNET={cfg.edge_subnet!r} is not an IPv4 network like 10.213.0.0/24"
            ) from None
        if subnet.prefixlen > 24:
            raise ClusterError(f"EDGE_SUBNET={cfg.edge_subnet!r} is smaller than a /24")
        return cls(cfg.edge_netns_prefix, subnet)

    def _at(self, offset: int) -> str:
        return str(self.subnet.network_address + offset)

    @property
    def bridge(self) -> str:
        return f"{self.prefix}-br"

    @property
    def host_address(self) -> str:
        return self._at(1)

    @property
    def vip(self) -> str:
        return self._at(10)

    def namespace(self, edge: str) -> str:
        return f"{self.prefix}-{edge}"

    def host_link(self, edge: str) -> str:
        return f"{self.prefix}-{edge}"  # link names and namespace names never meet

    def address(self, edge: str) -> str:
        return self._at(2 + EDGES.index(edge))

    def outside_client(self, index: int) -> str:
        """An outside client's address on the bridge (``index`` from 0 to 99)."""
        return self._at(OUTSIDE_CLIENTS_FROM + index % 100)


LIVE_PORT_OFFSET = 50  # a live-update server's default port: its app server's port + 50


@dataclass(frozen=True)
class Settings:
    """Everything the cluster needs to know, from the environment with local defaults."""

    state_dir: Path = field(
        default_factory=lambda: Path(os.environ.get("CLUSTER_STATE_DIR", REPO / ".cluster")).resolve()
    )
    pg_primary_port: int = field(default_factory=lambda: _ports("PG_PRIMARY_PORT", "25432")[0])
    pg_replica_port: int = field(default_factory=lambda: _ports("PG_REPLICA_PORT", "25433")[0])
    # The PostgreSQL members (Patroni runs each) and their REST APIs; the two ports above are
    # HAProxy's, which route to whichever member is the leader / a replica now (ADR 0017).
    pg_member_ports: list[int] = field(default_factory=lambda: _ports("PG_MEMBER_PORTS", "25434,25435"))
    patroni_rest_ports: list[int] = field(default_factory=lambda: _ports("PATRONI_REST_PORTS", "25008,25009"))
    etcd_client_ports: list[int] = field(
        default_factory=lambda: _ports("ETCD_CLIENT_PORTS", "25379,25380,25381")
    )
    etcd_peer_ports: list[int] = field(default_factory=lambda: _ports("ETCD_PEER_PORTS", "25389,25390,25391"))
    # host:port of an etcd the cluster does not run itself; empty: its own three members.
    etcd_hosts: list[str] = field(
        default_factory=lambda: [h.strip() for h in os.environ.get("ETCD_HOSTS", "").split(",") if h.strip()]
    )
    pgbouncer_port: int = field(default_factory=lambda: _ports("PGBOUNCER_PORT", "26432")[0])
    # The second PgBouncer, and the HAProxy beside it (its primary and replica ports): the app
    # lists both pairs and reaches the other when one dies (ADR 0018).
    pgbouncer2_port: int = field(default_factory=lambda: _ports("PGBOUNCER2_PORT", "26433")[0])
    haproxy2_ports: list[int] = field(default_factory=lambda: _ports("HAPROXY2_PORTS", "25436,25437"))
    lock_redis_ports: list[int] = field(
        default_factory=lambda: _ports("LOCK_REDIS_PORTS", "26379,26380,26381")
    )
    broker_redis_port: int = field(default_factory=lambda: _ports("BROKER_REDIS_PORT", "26390")[0])
    # The broker's replica and its three Sentinels (ADR 0019); by default the broker's port + 1
    # and + 2..4, so clusters whose broker ports differ never share them (see __post_init__).
    broker_replica_port: int = field(
        default_factory=lambda: (_ports("BROKER_REDIS_REPLICA_PORT", "") or [0])[0]
    )
    sentinel_ports: list[int] = field(default_factory=lambda: _ports("SENTINEL_PORTS", ""))
    # The name the Sentinels give the broker's master; the app asks them for its address.
    broker_sentinel_master: str = field(
        default_factory=lambda: os.environ.get("BROKER_SENTINEL_MASTER", "broker")
    )
    app_ports: list[int] = field(default_factory=lambda: _ports("APP_PORTS", "28001,28002,28003"))
    nginx_http_port: int = field(default_factory=lambda: _ports("NGINX_HTTP_PORT", "28080")[0])
    nginx_https_port: int = field(default_factory=lambda: _ports("NGINX_HTTPS_PORT", "28443")[0])
    # The Socket.IO servers, one per app server; by default each app port + LIVE_PORT_OFFSET, so
    # clusters whose app ports differ never share them (see __post_init__).
    live_ports: list[int] = field(default_factory=lambda: _ports("LIVE_PORTS", ""))
    # The edge pair's network namespaces, bridge and links are named from this prefix, and its
    # addresses come from this subnet (deploy/local/cluster/edge.py): each cluster on a machine
    # needs its own of both.
    edge_netns_prefix: str = field(default_factory=lambda: os.environ.get("EDGE_NETNS_PREFIX", "app-edge"))
    edge_subnet: str = field(default_factory=lambda: os.environ.get("EDGE_SUBNET", "10.213.0.0/24"))
    db_name: str = field(default_factory=lambda: os.environ.get("DB_NAME", "app"))
    db_user: str = field(default_factory=lambda: os.environ.get("DB_USER", "app"))
    db_password: str = field(default_factory=lambda: os.environ.get("DB_PASSWORD", "app-local-password"))

    def __post_init__(self) -> None:
        if not self.live_ports:
            object.__setattr__(self, "live_ports", [port + LIVE_PORT_OFFSET for port in self.app_ports])
        if not self.broker_replica_port:
            object.__setattr__(self, "broker_replica_port", self.broker_redis_port + 1)
        if not self.sentinel_ports:
            object.__setattr__(self, "sentinel_ports", [self.broker_redis_port + i for i in (2, 3, 4)])
        if len(self.patroni_rest_ports) != len(self.pg_member_ports):
            raise ClusterError(
                f"PATRONI_REST_PORTS names {len(self.patroni_rest_ports)} ports; "
                f"PG_MEMBER_PORTS names {len(self.pg_member_ports)}"
            )
        if len(self.etcd_peer_ports) != len(self.etcd_client_ports):
            raise ClusterError(
                f"ETCD_PEER_PORTS names {len(self.etcd_peer_ports)} ports; "
                f"ETCD_CLIENT_PORTS names {len(self.etcd_client_ports)}"
            )
        if len(self.haproxy2_ports) != 2:
            raise ClusterError(f"HAPROXY2_PORTS names {len(self.haproxy2_ports)} ports; it takes two")
        if len(self.live_ports) != len(self.app_ports):
            raise ClusterError(
                f"LIVE_PORTS names {len(self.live_ports)} ports; APP_PORTS names {len(self.app_ports)}"
            )

    def ratelimit_bypass_token(self) -> str:
        """The token that exempts the test suite and benchmarks from NGINX's rate limits (ADR 0006).

        Random per cluster and kept in the state folder; NGINX_RATELIMIT_BYPASS_TOKEN overrides it.
        Deliberately not in ``app_env``/``cluster.env``: local settings load that file, and a
        production rendering made on a developer machine must not inherit the local token.
        """
        if os.environ.get("NGINX_RATELIMIT_BYPASS_TOKEN"):
            return os.environ["NGINX_RATELIMIT_BYPASS_TOKEN"]
        return self._state_secret("ratelimit-bypass-token")

    def redis_password(self) -> str:
        """The password of the ``app`` ACL user on every Redis node (random per cluster)."""
        return self._state_secret("redis-password")

    def redis_secret(self, user: str) -> str:
        """The password of the broker's replication or Sentinel user, or of the Sentinels' peers."""
        return self._state_secret(f"redis-{user}-password")

    def redis_url(self, port: int, db: int = 0) -> str:
        """A URL with the cluster's Redis credentials, for tests and tools that pick a node by port."""
        return f"redis://{REDIS_USER}:{self.redis_password()}@127.0.0.1:{port}/{db}"

    def _state_secret(self, name: str) -> str:
        path = self.state_dir / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            draft = path.with_name(f"{path.name}.{os.getpid()}")
            draft.write_text(secrets.token_hex(16) + "\n")
            draft.chmod(0o600)
            with contextlib.suppress(FileExistsError):  # another process made one first: use it
                os.link(draft, path)
            draft.unlink()
        return path.read_text().strip()

    @property
    def pg_member_names(self) -> list[str]:
        return [f"pg{i}" for i in range(1, len(self.pg_member_ports) + 1)]

    @property
    def etcd_member_names(self) -> list[str]:
        return [] if self.etcd_hosts else [f"etcd{i}" for i in range(1, len(self.etcd_client_ports) + 1)]

    def etcd_endpoints(self) -> list[str]:
        """host:port of every etcd member Patroni talks to."""
        return self.etcd_hosts or [f"127.0.0.1:{port}" for port in self.etcd_client_ports]

    def pg_secret(self, name: str) -> str:
        """The PostgreSQL superuser's, the replication user's or Patroni's REST password."""
        return self._state_secret(f"pg-{name}-password")

    @property
    def pgbouncer_ports(self) -> list[int]:
        return [self.pgbouncer_port, self.pgbouncer2_port]

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def pid_dir(self) -> Path:
        return self.state_dir / "pids"

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def server_names(self) -> list[str]:
        return [f"app{i}" for i in range(1, len(self.app_ports) + 1)]

    def app_env(self) -> dict[str, str]:
        """What the Django processes need to reach this cluster (also written to cluster.env)."""
        lock_urls = ",".join(f"redis://127.0.0.1:{port}/0" for port in self.lock_redis_ports)
        return {
            "DB_NAME": self.db_name,
            "DB_USER": self.db_user,
            "DB_PASSWORD": self.db_password,
            "PGBOUNCER_PORT": str(self.pgbouncer_port),
            "PGBOUNCER2_PORT": str(self.pgbouncer2_port),
            # Both PgBouncers (on loopback, the default host), in a random order per connection:
            # each carries about half of the connections, and one that is gone is skipped at
            # connect time (ADR 0018). Reads go through either HAProxy's replica port the same
            # way. No DB_HOST / DB_REPLICA_HOST here: a production rendering made on this machine
            # must never take a host from the local cluster.
            "DB_PORT": ",".join(str(port) for port in self.pgbouncer_ports),
            "DB_REPLICA_PORT": f"{self.pg_replica_port},{self.haproxy2_ports[1]}",
            "DB_LOAD_BALANCE_HOSTS": "random",
            "PG_PRIMARY_PORT": str(self.pg_primary_port),
            "PG_REPLICA_PORT": str(self.pg_replica_port),
            # The broker through its Sentinels: the app asks them for the master (ADR 0019).
            "BROKER_SENTINELS": ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports),
            "BROKER_SENTINEL_MASTER": self.broker_sentinel_master,
            "LOCK_REDIS_URLS": lock_urls,
            # Every Redis node runs with ACLs (no default user): settings put these in the URLs.
            "LOCK_REDIS_USERNAME": REDIS_USER,
            "LOCK_REDIS_PASSWORD": self.redis_password(),
            "BROKER_REDIS_USERNAME": REDIS_USER,
            "BROKER_REDIS_PASSWORD": self.redis_password(),
            "NGINX_HTTP_PORT": str(self.nginx_http_port),
            "NGINX_HTTPS_PORT": str(self.nginx_https_port),
            "APP_PORTS": ",".join(str(port) for port in self.app_ports),
            "EDGE_URL": self.edge_url(),
        }

    def edge_url(self) -> str:
        """The edge pair's virtual address, where clients go (deploy/local/cluster/edge.py)."""
        return f"https://{EdgeNetwork.of(self).vip}:{self.nginx_https_port}"
