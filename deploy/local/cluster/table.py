"""The process table: every process of the cluster in start order, and operations on one by name."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
from collections.abc import Callable, Sequence
from pathlib import Path

from deploy.local.cluster.edge import (
    app_trust_env,
    ensure_edge_network,
    keepalived_config_file,
    prepare_keepalived,
)
from deploy.local.cluster.nginx import nginx_config_file, prepare_nginx
from deploy.local.cluster.patroni import (
    etcd_config_file,
    haproxy_config_file,
    pg_members,
    prepare_etcd,
    prepare_haproxy,
    prepare_member,
)
from deploy.local.cluster.pgbouncer import pgbouncer_ini_file, prepare_pgbouncer
from deploy.local.cluster.processes import (
    Service,
    exclusive,
    recorded_pid,
    start_service,
    stop_service,
    wait_stopped,
)
from deploy.local.cluster.sentinel import broker_services
from deploy.local.cluster.settings import (
    EDGES,
    PG_USER,
    REDIS_USER,
    REPO,
    ClusterError,
    EdgeNetwork,
    Settings,
)
from deploy.redis.acl import BENCH_PEER_COMMANDS, BENCH_PEER_KEYS, acl_lines, broker_user, lock_user

# The app's default lock prefix (config/settings/components/locking.py); the cluster runs it.
LOCK_KEY_PREFIX = "lock:"


def signal_service(name: str, sig: signal.Signals, cfg: Settings | None = None) -> int:
    """Send ``sig`` to one running process (tests use SIGSTOP/SIGCONT/SIGKILL); return its PID."""
    cfg = cfg or Settings()
    service = services(cfg)[name]
    pid = recorded_pid(service, cfg)
    if pid is None:
        raise ClusterError(f"{name} is not running")
    os.kill(pid, sig)
    return pid


def stop(names: Sequence[str], cfg: Settings) -> list[str]:
    """Stop the named processes together and wait for all of them; return those that ran."""
    table = services(cfg)
    pending: list[tuple[Service, int]] = []
    with contextlib.ExitStack() as held:
        for name in sorted(names):  # one order, so two stops never wait on each other
            held.enter_context(exclusive(table[name], cfg))
        for name in names:
            service = table[name]
            pid = recorded_pid(service, cfg)
            if pid and stop_service(service, cfg):
                pending.append((service, pid))
        for service, pid in pending:
            wait_stopped(service, cfg, pid, service.stop_timeout)
    return [service.name for service, _ in pending]


def restart(name: str, cfg: Settings | None = None) -> int:
    cfg = cfg or Settings()
    stop([name], cfg)
    return start_service(services(cfg)[name], cfg)


VENV_BIN = REPO / ".venv" / "bin"


def _make_folder(folder: Path) -> Callable[[Settings], None]:
    def make(_cfg: Settings) -> None:
        folder.mkdir(parents=True, exist_ok=True)

    return make


def redis_acl(cfg: Settings, role: str) -> str:
    """A node's users: no default user, and the app's user with its role's rights only
    (deploy/redis/acl.py). In a file, not on the command line, where every local user could
    read the password. The user is named ``app`` on both roles' nodes (each node has one)."""
    if role == "lock":
        # The app's lock prefix, the test runs' own prefixes and the benchmark's peers.
        patterns = [f"{LOCK_KEY_PREFIX}*", "test-*", *BENCH_PEER_KEYS]
        user = lock_user(
            REDIS_USER, cfg.redis_password(), key_patterns=patterns, extra_commands=BENCH_PEER_COMMANDS
        )
    else:
        user = broker_user(REDIS_USER, cfg.redis_password())
    return acl_lines([user])


def _prepare_redis(folder: Path, role: str) -> Callable[[Settings], None]:
    def make(cfg: Settings) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        conf = folder / "redis.conf"
        conf.write_text(redis_acl(cfg, role))
        conf.chmod(0o600)

    return make


def redis_accepts_credentials(cfg: Settings, port: int) -> bool:
    """Whether the node on ``port`` runs the cluster's current users: it takes the cluster's
    credentials and refuses that user ``CONFIG`` (a node started before the cluster had them,
    or before each role's user lost the admin commands, does not, and is restarted by ``up``)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(f"AUTH {REDIS_USER} {cfg.redis_password()}\r\n".encode())
            if not sock.recv(64).startswith(b"+OK"):
                return False
            sock.sendall(b"CONFIG GET maxmemory\r\n")
            return sock.recv(256).startswith(b"-NOPERM")
    except OSError:
        return False


def _fresh_metrics_folder(folder: Path) -> Callable[[Settings], None]:
    # prometheus-client's multiprocess files are per PID: a restarted process group starts empty
    # so a reused PID never adds to an old process's counters.
    def make(_cfg: Settings) -> None:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)  # a concurrent start made it first

    return make


def _on_edge_network(prepare: Callable[[Settings], None]) -> Callable[[Settings], None]:
    # App and live servers also listen on the host's bridge address, where both edges reach them.
    def make(cfg: Settings) -> None:
        ensure_edge_network(cfg)
        prepare(cfg)

    return make


def services(cfg: Settings) -> dict[str, Service]:
    """Every process, in start order."""
    edge_net = EdgeNetwork.of(cfg)
    table: list[Service] = []
    # PostgreSQL under Patroni over etcd, HAProxy routing to the current leader (ADR 0017).
    for name, client_port in zip(cfg.etcd_member_names, cfg.etcd_client_ports, strict=False):
        conf = etcd_config_file(cfg, name)
        table.append(Service(name, ["/usr/bin/etcd", "--config-file", str(conf)], port=client_port,
                             port_var="ETCD_CLIENT_PORTS", prepare=prepare_etcd(name),
                             marker=str(conf)))  # fmt: skip
    for pg in pg_members(cfg):
        conf = cfg.state_dir / "patroni" / f"{pg.name}.yml"
        # The service's port is Patroni's REST API; the member's own PostgreSQL port follows it.
        table.append(Service(pg.name, ["/usr/bin/patroni", str(conf)], port=pg.rest_port,
                             port_var="PATRONI_REST_PORTS", user=PG_USER, prepare=prepare_member(pg.name),
                             marker=str(conf), stop_timeout=60.0))  # fmt: skip
    # Two PgBouncers, each with an HAProxy beside it routing to the current leader / replica; the
    # app servers list both pairs (libpq multi-host), so losing one costs only the requests in
    # flight on it (ADR 0018).
    pairs = [
        ("haproxy", [cfg.pg_primary_port, cfg.pg_replica_port], "PG_PRIMARY_PORT",
         "pgbouncer", cfg.pgbouncer_port, "PGBOUNCER_PORT"),
        ("haproxy2", cfg.haproxy2_ports, "HAPROXY2_PORTS",
         "pgbouncer2", cfg.pgbouncer2_port, "PGBOUNCER2_PORT"),
    ]  # fmt: skip
    for haproxy, haproxy_ports, haproxy_var, pgbouncer, port, var in pairs:
        haproxy_cfg = haproxy_config_file(cfg, haproxy)
        ini = pgbouncer_ini_file(cfg, pgbouncer)
        table += [
            Service(haproxy, ["/usr/sbin/haproxy", "-db", "-f", str(haproxy_cfg)],
                    port=haproxy_ports[0], port_var=haproxy_var, marker=str(haproxy_cfg),
                    prepare=prepare_haproxy(haproxy, *haproxy_ports)),
            Service(pgbouncer, ["/usr/sbin/pgbouncer", str(ini)], port=port, port_var=var, user=PG_USER,
                    stop_signal=signal.SIGINT, prepare=prepare_pgbouncer(pgbouncer, port, haproxy_ports),
                    marker=str(ini)),
        ]  # fmt: skip
    redis_nodes = [
        (f"redis-lock-{i}", port, "LOCK_REDIS_PORTS", "lock")
        for i, port in enumerate(cfg.lock_redis_ports, 1)
    ]
    for name, port, var, role in redis_nodes:
        folder = cfg.state_dir / name
        argv = ["/usr/bin/redis-server", str(folder / "redis.conf"), "--bind", "127.0.0.1",
                "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(folder),
                "--daemonize", "no"]  # fmt: skip
        table.append(Service(name, argv, port=port, port_var=var, marker=f":{port}",
                             prepare=_prepare_redis(folder, role)))  # fmt: skip
    table += broker_services(cfg)  # the broker's master and replica under Sentinel (ADR 0019)
    gunicorn_conf = str(REPO / "deploy" / "gunicorn" / "gunicorn.conf.py")
    celery = str(VENV_BIN / "celery")
    for server, port in zip(cfg.server_names, cfg.app_ports, strict=True):
        # A short drain keeps restarts and `make down` quick (production drains 15 s); the slow
        # endpoint lets the drain tests hold a request open across a SIGTERM (ADR 0005). DEBUG
        # is off (production-shaped); the test-only endpoints are on by their own settings.
        env = {"APP_SERVER_NAME": server, "DJANGO_SETTINGS_MODULE": "config.settings.local",
               "PYTHONUNBUFFERED": "1", "HEALTH_DRAIN_SECONDS": "3", "DJANGO_DEBUG": "0",
               "HEALTH_DEBUG_SLOW_ENDPOINT": "1", "REPLICAS_DEBUG_ENDPOINTS": "1",
               **app_trust_env(cfg)}  # fmt: skip
        gunicorn = [str(VENV_BIN / "gunicorn"), "-c", gunicorn_conf, "--bind", f"127.0.0.1:{port}",
                    "--bind", f"{edge_net.host_address}:{port}", "--name", server, "config.wsgi"]  # fmt: skip
        worker = [celery, "-A", "config", "worker", "-n", f"worker@{server}", "--concurrency", "2",
                  "--loglevel", "INFO"]  # fmt: skip
        schedule = cfg.state_dir / f"beat-{server}.schedule"
        beat = [celery, "-A", "config", "beat", "--loglevel", "INFO", "--schedule", str(schedule),
                "--pidfile", str(cfg.run_dir / f"beat-{server}.celery.pid")]  # fmt: skip
        # One metrics folder per process group; the server's /metrics reads all three.
        metrics = cfg.state_dir / "metrics" / server
        env["METRICS_SERVER_DIR"] = str(metrics)
        gunicorn_env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics / "gunicorn")}
        worker_env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics / "worker")}
        beat_env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics / "beat")}
        table += [
            Service(server, gunicorn, port=port, port_var="APP_PORTS", env=gunicorn_env,
                    marker=f"127.0.0.1:{port}",
                    prepare=_on_edge_network(_fresh_metrics_folder(metrics / "gunicorn")),
                    ready_path="/health/live"),
            Service(f"worker-{server}", worker, env=worker_env, marker=f"worker@{server}",
                    prepare=_fresh_metrics_folder(metrics / "worker")),
            Service(f"beat-{server}", beat, env=beat_env, marker=str(schedule),
                    prepare=_fresh_metrics_folder(metrics / "beat")),
        ]  # fmt: skip
        table.append(_live_service(cfg, server, port=cfg.live_ports[cfg.server_names.index(server)],
                                   env=env, metrics=metrics))  # fmt: skip
    # The edge pair (ADR 0020): in each edge's network namespace an NGINX, and a keepalived that
    # holds the virtual address while that NGINX answers. ``ip netns exec`` execs the program,
    # so the recorded PID is NGINX's master or keepalived's parent itself.
    nginx_log = str(cfg.log_dir / "nginx-error.log")
    for edge in EDGES:
        netns, conf = edge_net.namespace(edge), nginx_config_file(cfg, edge)
        nginx = ["ip", "netns", "exec", netns, "nginx", "-e", nginx_log, "-c", str(conf), "-g", "daemon off;"]
        table.append(Service(f"nginx-{edge}", nginx, port=cfg.nginx_https_port, port_var="NGINX_HTTPS_PORT",
                             stop_signal=signal.SIGQUIT, prepare=prepare_nginx(edge), marker=str(conf),
                             host=edge_net.address(edge), netns=netns))  # fmt: skip
    for edge in EDGES:
        netns, conf = edge_net.namespace(edge), keepalived_config_file(cfg, edge)
        pid_files = ["-p", str(conf.parent / "keepalived.pid"), "-r", str(conf.parent / "vrrp.pid"),
                     "-c", str(conf.parent / "checkers.pid")]  # fmt: skip
        keepalived = ["ip", "netns", "exec", netns, "/usr/sbin/keepalived", "--dont-fork", "--log-console",
                      "--log-detail", "--vrrp", "-f", str(conf), *pid_files]  # fmt: skip
        table.append(Service(f"keepalived-{edge}", keepalived, prepare=prepare_keepalived(edge),
                             marker=str(conf), netns=netns))  # fmt: skip
    return {service.name: service for service in table}


def _live_service(cfg: Settings, server: str, *, port: int, env: dict[str, str], metrics: Path) -> Service:
    """The server's Socket.IO process (``manage.py live_server``, live/server.py)."""
    edge_net = EdgeNetwork.of(cfg)
    hosts = (edge_net.vip, "localhost", "127.0.0.1")
    origins = ",".join(f"https://{host}:{cfg.nginx_https_port}" for host in hosts)
    # A short drain and token recheck keep restarts and the revocation test quick.
    live_env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics / "live"), "LIVE_DRAIN_SECONDS": "2",
                "LIVE_TOKEN_RECHECK_SECONDS": "2", "LIVE_ALLOWED_ORIGINS": origins}  # fmt: skip
    argv = [
        str(VENV_BIN / "python"),
        str(REPO / "manage.py"),
        "live_server",
        "--bind",
        f"127.0.0.1:{port}",
        "--bind",
        f"{edge_net.host_address}:{port}",
    ]
    return Service(f"live-{server}", argv, port=port, port_var="LIVE_PORTS", env=live_env,
                   marker=f"live_server --bind 127.0.0.1:{port}", ready_path="/health/live",
                   prepare=_on_edge_network(_fresh_metrics_folder(metrics / "live")))  # fmt: skip


APP_TIER_PREFIXES = ("app", "worker-", "beat-", "live-", "nginx", "keepalived")
