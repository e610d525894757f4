"""The commands: up, down, status, start, stop and restart."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Callable, Sequence
from functools import partial

from deploy.local.cluster.edge import (
    edge_network_exists,
    edge_roles,
    remove_edge_network,
    stop_legacy_nginx,
    wait_edge_pair,
)
from deploy.local.cluster.patroni import (
    check_etcd,
    legacy_data,
    member_role,
    roles,
    stop_legacy_postgres,
    stop_orphan_postmaster,
    wait_member_answering,
    wait_member_ready,
)
from deploy.local.cluster.postgres import bootstrap_primary
from deploy.local.cluster.processes import Service, chown_to, recorded_pid, run, start_service
from deploy.local.cluster.sentinel import (
    BROKER_NODES,
    SENTINEL_PREFIX,
    broker_roles,
    check_sentinels,
    node_role,
    sentinel_names,
)
from deploy.local.cluster.settings import PG_USER, REPO, ClusterError, Settings
from deploy.local.cluster.table import (
    APP_TIER_PREFIXES,
    VENV_BIN,
    redis_accepts_credentials,
    restart,
    services,
    stop,
)
from deploy.local.host import raise_file_limit


def _say(message: str) -> None:
    print(message, flush=True)


def ensure_dirs(cfg: Settings) -> None:
    for folder in (cfg.state_dir, cfg.log_dir, cfg.pid_dir, cfg.run_dir):
        folder.mkdir(parents=True, exist_ok=True)
    chown_to(cfg.run_dir, PG_USER)  # PostgreSQL's unix socket lives here
    write_cluster_env(cfg)


def write_cluster_env(cfg: Settings) -> None:
    """The app's environment for this cluster, passwords included: readable by the owner of the
    checkout only (who runs the tests and manage.py), never by every local user."""
    path = cfg.state_dir / "cluster.env"
    text = "".join(f"{key}={value}\n" for key, value in sorted(cfg.app_env().items()))
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    path.chmod(0o600)  # a file from before this rule keeps its old mode through O_CREAT
    owner = REPO.stat()
    if os.geteuid() == 0 and (owner.st_uid, owner.st_gid) != (0, 0):
        os.chown(path, owner.st_uid, owner.st_gid)


def _manage(cfg: Settings, *args: str, step: str, env: dict[str, str] | None = None) -> str:
    return run(
        [str(VENV_BIN / "python"), str(REPO / "manage.py"), *args],
        log=cfg.log_dir / "manage.log",
        step=step,
        env={
            **cfg.app_env(),
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "APP_SERVER_NAME": "setup",
            **(env or {}),
        },
    )


def _collect_static(cfg: Settings) -> str:
    """The app servers serve static files (WhiteNoise) from what collectstatic wrote, as in
    production. Hashing and compressing takes tens of seconds: only again after an install."""
    manifest = REPO / "staticfiles" / "staticfiles.json"
    installed = REPO / ".venv" / ".installed"
    if manifest.exists() and installed.exists() and manifest.stat().st_mtime > installed.stat().st_mtime:
        return "up to date"
    return _manage(cfg, "collectstatic", "--noinput", step="collect static files").splitlines()[-1]


def _admin_user(cfg: Settings) -> str:
    """Create the local admin user once; its password is kept in the state folder."""
    password_file = cfg.state_dir / "admin-password"
    if password_file.exists():
        return password_file.read_text().strip()
    password = secrets.token_urlsafe(12)
    _manage(
        cfg,
        "createsuperuser",
        "--noinput",
        "--username",
        "admin",
        "--email",
        "admin@localhost",
        step="create admin user",
        env={"DJANGO_SUPERUSER_PASSWORD": password},
    )
    password_file.write_text(password + "\n")
    password_file.chmod(0o600)
    return password


def _etcd_quorum(cfg: Settings) -> str:
    check_etcd(cfg)
    return ", ".join(cfg.etcd_endpoints())


def up(cfg: Settings | None = None, *, only_infra: bool = False) -> None:
    cfg = cfg or Settings()
    old_data = legacy_data(cfg)
    if old_data is not None:
        raise ClusterError(
            f"{old_data} holds the database of the local cluster from before Patroni: run `make down`, "
            f"then move {old_data.parent} aside (a fresh one is made) or adopt its data as in "
            "docs/runbooks/move-onto-patroni.md"
        )
    raise_file_limit()
    ensure_dirs(cfg)
    table = services(cfg)
    infra = [name for name in table if not name.startswith(APP_TIER_PREFIXES)]
    app_tier = [] if only_infra else [name for name in table if name.startswith(APP_TIER_PREFIXES)]
    steps: list[tuple[str, Callable[[], object]]] = []
    # Redis nodes running without the cluster's ACL user (started by an older version of this
    # script) are restarted, and with them every app process that talks to them.
    stale_redis = [
        name
        for name, service in table.items()
        if name.startswith("redis-")
        and not name.startswith(SENTINEL_PREFIX)
        and recorded_pid(service, cfg) is not None
        and service.port is not None
        and not (
            redis_accepts_credentials(cfg, service.port)
            # a broker node from before Sentinel has no user for it (ADR 0019)
            and (name not in BROKER_NODES or node_role(cfg, service.port) is not None)
        )
    ]
    if stale_redis:
        stop([name for name in table if name.startswith(APP_TIER_PREFIXES)] + stale_redis, cfg)

    started: list[str] = []  # by this run: stopped again if a later step fails
    edge_network_made = not edge_network_exists(cfg)  # by this run: removed again on a failure

    def start(name: str) -> Callable[[], object]:
        def run() -> object:
            was_running = recorded_pid(table[name], cfg) is not None
            if not was_running:
                started.append(name)
            pid = start_service(table[name], cfg)
            running = " (already running)" if was_running else ""
            if name in cfg.pg_member_names:
                # Roles are waited for once every member runs: after a failover the last leader may
                # be a later member, and an earlier one will not lead without it (not the healthiest).
                if name != cfg.pg_member_names[-1]:
                    wait_member_answering(cfg, name, alive=lambda: recorded_pid(table[name], cfg) is not None)
                    return f"pid {pid}{running}"
                member_roles = []
                for member in cfg.pg_member_names:
                    role = wait_member_ready(cfg, member, alive=partial(_running, table[member], cfg))
                    member_roles.append(f"{member}={role}")
                bootstrap_primary(cfg)
                return f"pid {pid} roles: {' '.join(member_roles)}{running}"
            return f"pid {pid}" + (" (already running)" if was_running else "")

        return run

    for name in infra:
        port = table[name].port
        if name == cfg.pg_member_names[0]:
            steps.append(("etcd quorum", lambda: _etcd_quorum(cfg)))
        steps.append((f"{name}" + (f" :{port}" if port else ""), start(name)))
        if name == sentinel_names(cfg)[-1]:
            steps.append(("broker sentinels", lambda: check_sentinels(cfg)))
    steps.append(("migrate", lambda: _manage(cfg, "migrate", "--noinput", step="migrate") and "done"))
    if not only_infra:
        steps.append(("static files", lambda: _collect_static(cfg)))
        steps.append(("admin user", lambda: f"admin / {_admin_user(cfg)}"))
        # A small demo set (and the API's demo user) once; later runs leave the data alone.
        steps.append(
            (
                "demo data",
                lambda: _manage(cfg, "seed_demo", "--if-empty", step="seed demo data").splitlines()[-1],
            )
        )
    for name in app_tier:
        port = table[name].port
        steps.append((f"{name}" + (f" :{port}" if port else ""), start(name)))
    if not only_infra:
        steps.append(("edge pair", lambda: wait_edge_pair(cfg, table)))

    width = max(len(label) for label, _ in steps)
    for index, (label, action) in enumerate(steps, 1):
        prefix = f"[{index:2}/{len(steps)}] {label.ljust(width)}"
        try:
            result = action()
        except ClusterError as error:
            _say(f"{prefix}  FAILED")
            # Nothing half-started stays behind: what this run started stops again.
            down(cfg, only=started)
            if edge_network_made and not any(name.startswith(("nginx", "keepalived")) for name in table
                                             if recorded_pid(table[name], cfg)):  # fmt: skip
                remove_edge_network(cfg)
            raise ClusterError(f"step '{label}': {error}") from None
        _say(f"{prefix}  ok {result if isinstance(result, str) else ''}".rstrip())
    if not only_infra:
        _say(
            "\nThe cluster is up:\n"
            f"  {cfg.edge_url()}/  EDGE_URL: the edge pair's virtual address (self-signed certificate)\n"
            f"  {cfg.edge_url()}/admin/  user 'admin', "
            f"password in {cfg.state_dir / 'admin-password'}\n"
            f"  http://127.0.0.1:{cfg.app_ports[0]}/health       one app server directly\n"
            f"  logs: {cfg.log_dir}/   stop: make down"
        )


def down(cfg: Settings | None = None, *, only: Sequence[str] | None = None) -> list[str]:
    """Stop every process (or those in ``only``), the app tier first and etcd last."""
    cfg = cfg or Settings()
    table = services(cfg)
    wanted = set(table if only is None else only)
    app_tier = [name for name in table if name.startswith(APP_TIER_PREFIXES) and name in wanted]
    stopped = stop(app_tier, cfg)
    stopped += stop([name for name in ("pgbouncer", "pgbouncer2") if name in wanted], cfg)
    stopped += stop([name for name in ("haproxy", "haproxy2") if name in wanted], cfg)
    # The Sentinels before the broker's nodes: a master stopping first would be failed over.
    stopped += stop([name for name in sentinel_names(cfg) if name in wanted], cfg)
    stopped += stop([name for name in table if name.startswith("redis-") and name in wanted], cfg)
    # Replicas before the leader: a leader stopping first hands its role over for nothing.
    members = [name for name in cfg.pg_member_names if name in wanted]
    members.sort(key=lambda name: member_role(cfg, name) == "leader")
    for name in members:
        stopped += stop([name], cfg)
        if stop_orphan_postmaster(cfg, name):  # its Patroni was killed before
            stopped.append(f"{name} (postmaster)")
    stopped += stop([name for name in cfg.etcd_member_names if name in wanted], cfg)
    if only is None:
        stopped += stop_legacy_postgres(cfg)
        stopped += stop_legacy_nginx(cfg)
        stopped += remove_edge_network(cfg)  # its namespaces, links and bridge
    return stopped


def status(cfg: Settings | None = None) -> list[tuple[str, int | None, int | None, str]]:
    cfg = cfg or Settings()
    return [
        (name, recorded_pid(service, cfg), service.port, service.port_var)
        for name, service in services(cfg).items()
    ]


def _running(service: Service, cfg: Settings) -> bool:
    return recorded_pid(service, cfg) is not None


def main(argv: Sequence[str]) -> int:
    usage = (
        "usage: python -m deploy.local.cluster "
        "up [--infra] | down | status | start NAME | stop NAME | restart NAME"
    )
    if not argv:
        print(usage, file=sys.stderr)
        return 2
    command, args = argv[0], list(argv[1:])
    if os.geteuid() != 0:
        print(
            "the local cluster needs root (PostgreSQL and PgBouncer run as the 'postgres' user); "
            "run it with sudo",
            file=sys.stderr,
        )
        return 1
    try:
        cfg = Settings()  # a malformed port list is one line too
        if command == "up":
            up(cfg, only_infra="--infra" in args)
        elif command == "down":
            stopped = down(cfg)
            _say(f"stopped {len(stopped)} processes" + (f": {', '.join(stopped)}" if stopped else ""))
        elif command == "status":
            member_roles = {**roles(cfg), **broker_roles(cfg), **edge_roles(cfg, services(cfg))}
            for name, pid, port, var in status(cfg):
                where = f":{port} ({var})" if port else ""
                role = f"  role={member_roles[name] or 'none'}" if name in member_roles else ""
                _say(f"{name:16} {'running pid ' + str(pid) if pid else 'stopped':20} {where}{role}")
        elif command in ("start", "stop", "restart") and len(args) == 1:
            table = services(cfg)
            if args[0] not in table:
                print(f"unknown process '{args[0]}'; one of: {', '.join(table)}", file=sys.stderr)
                return 1
            raise_file_limit()
            ensure_dirs(cfg)
            if command == "start":
                _say(f"{args[0]} pid {start_service(table[args[0]], cfg)}")
            elif command == "stop":
                _say(f"{args[0]} " + ("stopped" if stop(args, cfg) else "was not running"))
            else:
                _say(f"{args[0]} pid {restart(args[0], cfg)}")
        else:
            print(usage, file=sys.stderr)
            return 2
    except ClusterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
