"""The local cluster: a three-server deployment on loopback, from nothing, with one command.

    python -m deploy.local.cluster up            # start everything (safe to run twice)
    python -m deploy.local.cluster down          # stop everything this script started
    python -m deploy.local.cluster status        # one line per process
    python -m deploy.local.cluster start NAME    # start one process (and nothing else)
    python -m deploy.local.cluster stop NAME     # stop one process by its recorded PID

What runs (default ports; each overridable by the variable named in ``status``):
PostgreSQL primary 25432 and streaming replica 25433, PgBouncer 26432, three lock Redis nodes
26379-26381, the broker Redis 26390, three app servers (gunicorn) 28001-28003 each with a
Celery worker and beat and a Socket.IO server 28051-28053, and NGINX on 28080 (HTTP) / 28443
(HTTPS).

State, logs and PID files live in ``.cluster/`` (``CLUSTER_STATE_DIR``). Every process is
started here and stopped here by its recorded PID, after checking that the PID still runs the
command we started (PIDs get reused). PostgreSQL and PgBouncer refuse to run as root, so they
run as the ``postgres`` user. Tests import this module to stop, pause and restart single
processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from deploy.local.host import raise_file_limit
from deploy.nginx.render import render_nginx
from deploy.pgbouncer.render import (
    PgBouncerValues,
    auth_file_query,
    auth_file_roles,
    render_pgbouncer_ini,
)

REPO = Path(__file__).resolve().parent.parent.parent
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_USER = "postgres"


class ClusterError(RuntimeError):
    """A step failed; the message says which and where its log is."""


def _ports(var: str, default: str) -> list[int]:
    raw = os.environ.get(var, default)
    try:
        return [int(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        raise ClusterError(f"{var}={raw!r} is not a comma-separated list of port numbers") from None


LIVE_PORT_OFFSET = 50  # a live-update server's default port: its app server's port + 50


@dataclass(frozen=True)
class Settings:
    """Everything the cluster needs to know, from the environment with local defaults."""

    state_dir: Path = field(
        default_factory=lambda: Path(os.environ.get("CLUSTER_STATE_DIR", REPO / ".cluster")).resolve()
    )
    pg_primary_port: int = field(default_factory=lambda: _ports("PG_PRIMARY_PORT", "25432")[0])
    pg_replica_port: int = field(default_factory=lambda: _ports("PG_REPLICA_PORT", "25433")[0])
    pgbouncer_port: int = field(default_factory=lambda: _ports("PGBOUNCER_PORT", "26432")[0])
    lock_redis_ports: list[int] = field(
        default_factory=lambda: _ports("LOCK_REDIS_PORTS", "26379,26380,26381")
    )
    broker_redis_port: int = field(default_factory=lambda: _ports("BROKER_REDIS_PORT", "26390")[0])
    app_ports: list[int] = field(default_factory=lambda: _ports("APP_PORTS", "28001,28002,28003"))
    nginx_http_port: int = field(default_factory=lambda: _ports("NGINX_HTTP_PORT", "28080")[0])
    nginx_https_port: int = field(default_factory=lambda: _ports("NGINX_HTTPS_PORT", "28443")[0])
    # The Socket.IO servers, one per app server; by default each app port + LIVE_PORT_OFFSET, so
    # clusters whose app ports differ never share them (see __post_init__).
    live_ports: list[int] = field(default_factory=lambda: _ports("LIVE_PORTS", ""))
    db_name: str = field(default_factory=lambda: os.environ.get("DB_NAME", "app"))
    db_user: str = field(default_factory=lambda: os.environ.get("DB_USER", "app"))
    db_password: str = field(default_factory=lambda: os.environ.get("DB_PASSWORD", "app-local-password"))

    def __post_init__(self) -> None:
        if not self.live_ports:
            object.__setattr__(self, "live_ports", [port + LIVE_PORT_OFFSET for port in self.app_ports])
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
        path = self.state_dir / "ratelimit-bypass-token"
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
            "PG_PRIMARY_PORT": str(self.pg_primary_port),
            "PG_REPLICA_PORT": str(self.pg_replica_port),
            "BROKER_REDIS_URL": f"redis://127.0.0.1:{self.broker_redis_port}",
            "LOCK_REDIS_URLS": lock_urls,
            "NGINX_HTTP_PORT": str(self.nginx_http_port),
            "NGINX_HTTPS_PORT": str(self.nginx_https_port),
            "APP_PORTS": ",".join(str(port) for port in self.app_ports),
        }


@dataclass
class Service:
    """One process of the cluster."""

    name: str
    argv: list[str]
    port: int | None = None
    port_var: str = ""
    user: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    stop_signal: signal.Signals = signal.SIGTERM
    stop_timeout: float = 30.0
    prepare: Callable[[Settings], None] | None = None
    # A string that must appear in /proc/PID/cmdline, so a reused PID is never signalled.
    marker: str = ""
    # For an HTTP server: a path that answers 200 once its workers serve. A gunicorn master
    # binds its port before the workers have loaded Django, and a balancer sending traffic in
    # that gap sees requests wait in the listen backlog.
    ready_path: str | None = None

    def pid_file(self, cfg: Settings) -> Path:
        return cfg.pid_dir / f"{self.name}.pid"

    def log_file(self, cfg: Settings) -> Path:
        return cfg.log_dir / f"{self.name}.log"


# --- processes --------------------------------------------------------------------------


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return ""
    if state in ("Z", "X"):  # a zombie has finished; only its parent has not noticed
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def recorded_pid(service: Service, cfg: Settings) -> int | None:
    """The PID we started for ``service`` if it still runs that command, else None."""
    try:
        pid = int(service.pid_file(cfg).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    cmd = _cmdline(pid)
    if cmd and service.marker in cmd:
        return pid
    return None


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def port_open(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def _chown_to(path: Path, user: str) -> None:
    import pwd

    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def _run(
    argv: Sequence[str], *, log: Path, user: str | None = None, env: dict[str, str] | None = None, step: str
) -> str:
    """Run a short command to completion; on failure raise naming the step and the log."""
    full_env = {**os.environ, **(env or {})}
    if user:
        full_env["HOME"] = "/"  # the postgres user cannot read root's HOME
    result = subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        env=full_env,
        user=user,
        cwd=REPO if not user else "/",
        check=False,
    )
    with log.open("a") as handle:
        handle.write(f"$ {' '.join(argv)}\n{result.stdout}{result.stderr}\n")
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise ClusterError(f"{step} failed: {tail[0]} (log: {log})")
    return result.stdout


@contextlib.contextmanager
def _exclusive(service: Service, cfg: Settings) -> Iterator[None]:
    """One start or stop of a process at a time, across processes (parallel test runs)."""
    cfg.pid_dir.mkdir(parents=True, exist_ok=True)
    with (cfg.pid_dir / f"{service.name}.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def start_service(service: Service, cfg: Settings, *, wait: bool = True) -> int:
    """Start one process unless it already runs; return its PID."""
    with _exclusive(service, cfg):
        return _start_service(service, cfg, wait=wait)


def _start_service(service: Service, cfg: Settings, *, wait: bool) -> int:
    pid = recorded_pid(service, cfg)
    if pid:
        return pid
    if service.port is not None and _port_in_use(service.port):
        raise ClusterError(
            f"port {service.port} for {service.name} is already in use; "
            f"set {service.port_var} to choose another"
        )
    if service.prepare:
        service.prepare(cfg)
    log = service.log_file(cfg)
    env = {**os.environ, **cfg.app_env(), **service.env}
    if service.user:
        env["HOME"] = "/"
    with log.open("ab") as handle:
        process = subprocess.Popen(
            service.argv,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            user=service.user,
            cwd=REPO if not service.user else "/",
            start_new_session=True,  # our signals (Ctrl-C in a test run) never reach it
        )
    service.pid_file(cfg).write_text(f"{process.pid}\n")
    if wait:
        _wait_started(service, cfg, process)
    return process.pid


def _wait_started(
    service: Service, cfg: Settings, process: subprocess.Popen[bytes], timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ClusterError(
                f"{service.name} exited with code {process.returncode} at start "
                f"(log: {service.log_file(cfg)})"
            )
        if service.port is None:
            if time.monotonic() > deadline - timeout + 1.0:
                return
        elif port_open(service.port) and (
            service.ready_path is None or _answers_ok(service.port, service.ready_path)
        ):
            return
        time.sleep(0.1)
    raise ClusterError(f"{service.name} did not start within {timeout:.0f}s (log: {service.log_file(cfg)})")


def _answers_ok(port: int, path: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:  # refused, reset, timed out, or an HTTP error status
        return False


def signal_service(name: str, sig: signal.Signals, cfg: Settings | None = None) -> int:
    """Send ``sig`` to one running process (tests use SIGSTOP/SIGCONT/SIGKILL); return its PID."""
    cfg = cfg or Settings()
    service = services(cfg)[name]
    pid = recorded_pid(service, cfg)
    if pid is None:
        raise ClusterError(f"{name} is not running")
    os.kill(pid, sig)
    return pid


def stop_service(service: Service, cfg: Settings, *, sig: signal.Signals | None = None) -> bool:
    """Stop one process by its recorded PID; return whether it was running."""
    pid = recorded_pid(service, cfg)
    if pid is None:
        service.pid_file(cfg).unlink(missing_ok=True)
        return False
    try:
        os.kill(pid, signal.SIGCONT)  # a paused process cannot act on SIGTERM
        os.kill(pid, sig or service.stop_signal)
    except ProcessLookupError:
        pass
    return True


def wait_stopped(service: Service, cfg: Settings, pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cmd = _cmdline(pid)
        if not cmd or service.marker not in cmd:
            service.pid_file(cfg).unlink(missing_ok=True)
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    service.pid_file(cfg).unlink(missing_ok=True)


def stop(names: Sequence[str], cfg: Settings) -> list[str]:
    """Stop the named processes together and wait for all of them; return those that ran."""
    table = services(cfg)
    pending: list[tuple[Service, int]] = []
    with contextlib.ExitStack() as held:
        for name in sorted(names):  # one order, so two stops never wait on each other
            held.enter_context(_exclusive(table[name], cfg))
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


# --- PostgreSQL --------------------------------------------------------------------------


def _pg_data(cfg: Settings, role: str) -> Path:
    return cfg.state_dir / "pg" / role


def _psql(cfg: Settings, sql: str, *, db: str = "postgres", step: str) -> str:
    return _run(
        [
            str(PG_BIN / "psql"),
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            str(cfg.run_dir),
            "-p",
            str(cfg.pg_primary_port),
            "-U",
            PG_USER,
            "-d",
            db,
            "-c",
            sql,
        ],
        log=cfg.log_dir / "bootstrap.log",
        user=PG_USER,
        step=step,
    )


def _prepare_primary(cfg: Settings) -> None:
    data = _pg_data(cfg, "primary")
    if (data / "PG_VERSION").exists():
        return
    data.mkdir(parents=True, exist_ok=True)
    _chown_to(data, PG_USER)
    data.chmod(0o700)
    _run(
        [
            str(PG_BIN / "initdb"),
            "-D",
            str(data),
            "-U",
            PG_USER,
            "-E",
            "UTF8",
            "--locale=C",
            "--auth-local=peer",
            "--auth-host=scram-sha-256",
            "--no-sync",
        ],
        log=cfg.log_dir / "pg-primary.log",
        user=PG_USER,
        step="initdb (primary)",
    )
    with (data / "postgresql.conf").open("a") as conf:
        conf.write(
            "\n# local cluster\n"
            "listen_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{cfg.run_dir}'\n"
            "max_connections = 200\n"
            "timezone = 'UTC'\n"
            "log_timezone = 'UTC'\n"
            "wal_level = replica\n"
            "max_wal_senders = 10\n"
            "max_replication_slots = 10\n"
            "hot_standby = on\n"
            "hot_standby_feedback = on\n"
            "wal_receiver_status_interval = 1s\n"
            "shared_buffers = 128MB\n"
            # A throwaway loopback cluster: durability against power loss buys nothing here.
            # synchronous_commit stays on (set again for older clusters in _bootstrap_primary):
            # a commit is then visible only once its WAL is flushed and streamed, as in production.
            "fsync = off\n"
            "synchronous_commit = on\n"
            "full_page_writes = off\n"
        )
    (data / "pg_hba.conf").write_text(
        "local all postgres peer\n"
        "host all all 127.0.0.1/32 scram-sha-256\n"
        "host replication replicator 127.0.0.1/32 scram-sha-256\n"
    )


def _bootstrap_primary(cfg: Settings) -> None:
    """Roles and the database; idempotent, run on every ``up``.

    Passwords are set only when a role is created: setting one again makes a new SCRAM salt,
    and a running PgBouncer, whose auth file holds the old secret, could no longer log in.
    """
    user, password, db = cfg.db_user, cfg.db_password, cfg.db_name
    _psql(
        cfg,
        f"""
        DO $$ BEGIN
          IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{user}') THEN
            CREATE ROLE "{user}" LOGIN CREATEDB PASSWORD '{password}';
          END IF;
          IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'replicator') THEN
            CREATE ROLE replicator LOGIN REPLICATION PASSWORD '{password}';
          END IF;
          IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pgbouncer_admin') THEN
            CREATE ROLE pgbouncer_admin LOGIN PASSWORD '{password}';
          END IF;
          IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pgbouncer_stats') THEN
            CREATE ROLE pgbouncer_stats LOGIN PASSWORD '{password}';
          END IF;
        END $$;
        GRANT pg_monitor TO "{user}";
    """,
        step="create roles",
    )
    exists = _psql(cfg, f"SELECT 1 FROM pg_database WHERE datname = '{db}'", step="find database")
    if not exists.strip():
        _psql(cfg, f'CREATE DATABASE "{db}" OWNER "{user}"', step="create database")
    # Clusters made when the local default was off: commits visible before streaming (ADR 0004).
    _psql(cfg, "ALTER SYSTEM SET synchronous_commit = on", step="synchronous commit")
    _psql(cfg, "SELECT pg_reload_conf()", step="reload configuration")


def _prepare_replica(cfg: Settings) -> None:
    data = _pg_data(cfg, "replica")
    if (data / "PG_VERSION").exists():
        return
    data.mkdir(parents=True, exist_ok=True)
    _chown_to(data, PG_USER)
    data.chmod(0o700)
    # A slot left over from an earlier replica would make pg_basebackup -C fail.
    _psql(
        cfg,
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
        "WHERE slot_name = 'replica1' AND NOT active",
        step="drop old replication slot",
    )
    _run(
        [
            str(PG_BIN / "pg_basebackup"),
            "-h",
            "127.0.0.1",
            "-p",
            str(cfg.pg_primary_port),
            "-U",
            "replicator",
            "-D",
            str(data),
            "-R",
            "-X",
            "stream",
            "-C",
            "-S",
            "replica1",
            "--no-sync",
            # Start at once; the default spread checkpoint can take minutes on an idle primary.
            "--checkpoint=fast",
        ],
        log=cfg.log_dir / "pg-replica.log",
        user=PG_USER,
        env={"PGPASSWORD": cfg.db_password},
        step="pg_basebackup (replica)",
    )


def _wait_pg_ready(cfg: Settings, port: int, name: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        result = subprocess.run(
            [str(PG_BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port)], check=False
        )
        if result.returncode == 0:
            return
        time.sleep(0.2)
    raise ClusterError(f"{name} did not accept connections within 60s (log: {cfg.log_dir / (name + '.log')})")


# --- PgBouncer ---------------------------------------------------------------------------


def write_pgbouncer_auth_file(cfg: Settings, out: Path) -> Path:
    """The SCRAM secrets PgBouncer checks clients against, read from the database itself.

    Reading ``pg_authid`` needs a superuser: here that is psql as the ``postgres`` OS user over
    the unix socket; elsewhere ``manage.py pgbouncer_auth_file --dsn`` does the same.
    """
    rows = _psql(cfg, auth_file_query(auth_file_roles(db_user=cfg.db_user)), step="read SCRAM secrets")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(rows)
    _chown_to(out, PG_USER)
    out.chmod(0o600)
    return out


def pgbouncer_values(cfg: Settings, *, auth_file: Path) -> PgBouncerValues:
    """The deployment template's values for this cluster: loopback hosts, the cluster's ports."""
    return PgBouncerValues(
        db_name=cfg.db_name,
        primary_host="127.0.0.1",
        primary_port=cfg.pg_primary_port,
        replica_host="127.0.0.1",
        replica_port=cfg.pg_replica_port,
        listen_addr="127.0.0.1",
        listen_port=cfg.pgbouncer_port,
        auth_file=auth_file,
        catch_all=True,  # the test suites' databases (test_<name>) go through it too
    )


def _prepare_pgbouncer(cfg: Settings) -> None:
    folder = cfg.state_dir / "pgbouncer"
    folder.mkdir(parents=True, exist_ok=True)
    auth_file = write_pgbouncer_auth_file(cfg, folder / "userlist.txt")
    render_pgbouncer_ini(pgbouncer_values(cfg, auth_file=auth_file), folder / "pgbouncer.ini")


# --- NGINX -------------------------------------------------------------------------------


def _prepare_nginx(cfg: Settings) -> None:
    folder = cfg.state_dir / "nginx"
    folder.mkdir(parents=True, exist_ok=True)
    for temp in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (folder / temp).mkdir(exist_ok=True)
        (folder / temp).chmod(0o777)  # written by the unprivileged worker processes
    cert, key = folder / "tls.crt", folder / "tls.key"
    if not cert.exists():
        _run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "825",
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost,IP:127.0.0.1",
                "-keyout",
                str(key),
                "-out",
                str(cert),
            ],
            log=cfg.log_dir / "nginx.log",
            step="self-signed certificate",
        )
    render_nginx(
        folder,
        environ={},  # the same templates as production, with this cluster's values only
        # The tests call https://127.0.0.1:PORT; redirects go to the first name.
        server_name="localhost 127.0.0.1",
        listen_host="127.0.0.1",
        http_port=cfg.nginx_http_port,
        https_port=cfg.nginx_https_port,
        tls_cert=cert,
        tls_key=key,
        app_servers=[f"127.0.0.1:{port}" for port in cfg.app_ports],
        websocket_servers=[f"127.0.0.1:{port}" for port in cfg.live_ports],
        # Only 127.0.0.1 is "internal" here, so tests can play an outside client from 127.0.0.2.
        internal_networks=["127.0.0.1/32", "::1/128"],
        ratelimit_bypass_token=cfg.ratelimit_bypass_token(),
        state_dir=folder,
        log_dir=cfg.log_dir,
    )
    _run(
        ["nginx", "-t", "-q", "-e", str(cfg.log_dir / "nginx-error.log"), "-c", str(folder / "nginx.conf")],
        log=cfg.log_dir / "nginx.log",
        step="nginx -t",
    )


# --- the table ---------------------------------------------------------------------------

VENV_BIN = REPO / ".venv" / "bin"


def _make_folder(folder: Path) -> Callable[[Settings], None]:
    def make(_cfg: Settings) -> None:
        folder.mkdir(parents=True, exist_ok=True)

    return make


def _fresh_metrics_folder(folder: Path) -> Callable[[Settings], None]:
    # prometheus-client's multiprocess files are per PID: a restarted process group starts empty
    # so a reused PID never adds to an old process's counters.
    def make(_cfg: Settings) -> None:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)  # a concurrent start made it first

    return make


def services(cfg: Settings) -> dict[str, Service]:
    """Every process, in start order."""
    primary, replica = _pg_data(cfg, "primary"), _pg_data(cfg, "replica")
    pgbouncer_ini = cfg.state_dir / "pgbouncer" / "pgbouncer.ini"
    nginx_conf = cfg.state_dir / "nginx" / "nginx.conf"
    postgres = str(PG_BIN / "postgres")
    table = [
        Service("pg-primary", [postgres, "-D", str(primary), "-p", str(cfg.pg_primary_port)],
                port=cfg.pg_primary_port, port_var="PG_PRIMARY_PORT", user=PG_USER,
                stop_signal=signal.SIGINT, prepare=_prepare_primary, marker=str(primary)),
        Service("pg-replica", [postgres, "-D", str(replica), "-p", str(cfg.pg_replica_port)],
                port=cfg.pg_replica_port, port_var="PG_REPLICA_PORT", user=PG_USER,
                stop_signal=signal.SIGINT, prepare=_prepare_replica, marker=str(replica)),
        Service("pgbouncer", ["/usr/sbin/pgbouncer", str(pgbouncer_ini)],
                port=cfg.pgbouncer_port, port_var="PGBOUNCER_PORT", user=PG_USER,
                stop_signal=signal.SIGINT, prepare=_prepare_pgbouncer, marker=str(pgbouncer_ini)),
    ]  # fmt: skip
    redis_nodes = [
        (f"redis-lock-{i}", port, "LOCK_REDIS_PORTS") for i, port in enumerate(cfg.lock_redis_ports, 1)
    ]
    redis_nodes.append(("redis-broker", cfg.broker_redis_port, "BROKER_REDIS_PORT"))
    for name, port, var in redis_nodes:
        folder = cfg.state_dir / name
        argv = ["/usr/bin/redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                "--appendonly", "no", "--dir", str(folder), "--daemonize", "no"]  # fmt: skip
        table.append(Service(name, argv, port=port, port_var=var, marker=f":{port}",
                             prepare=_make_folder(folder)))  # fmt: skip
    gunicorn_conf = str(REPO / "deploy" / "gunicorn" / "gunicorn.conf.py")
    celery = str(VENV_BIN / "celery")
    for server, port in zip(cfg.server_names, cfg.app_ports, strict=True):
        # A short drain keeps restarts and `make down` quick (production drains 15 s); the slow
        # endpoint lets the drain tests hold a request open across a SIGTERM (ADR 0005). DEBUG
        # is off (production-shaped); the test-only endpoints are on by their own settings.
        env = {"APP_SERVER_NAME": server, "DJANGO_SETTINGS_MODULE": "config.settings.local",
               "PYTHONUNBUFFERED": "1", "HEALTH_DRAIN_SECONDS": "3", "DJANGO_DEBUG": "0",
               "HEALTH_DEBUG_SLOW_ENDPOINT": "1", "REPLICAS_DEBUG_ENDPOINTS": "1"}  # fmt: skip
        gunicorn = [str(VENV_BIN / "gunicorn"), "-c", gunicorn_conf, "--bind", f"127.0.0.1:{port}",
                    "--name", server, "config.wsgi"]  # fmt: skip
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
                    marker=f"127.0.0.1:{port}", prepare=_fresh_metrics_folder(metrics / "gunicorn"),
                    ready_path="/health/live"),
            Service(f"worker-{server}", worker, env=worker_env, marker=f"worker@{server}",
                    prepare=_fresh_metrics_folder(metrics / "worker")),
            Service(f"beat-{server}", beat, env=beat_env, marker=str(schedule),
                    prepare=_fresh_metrics_folder(metrics / "beat")),
        ]  # fmt: skip
        table.append(_live_service(cfg, server, port=cfg.live_ports[cfg.server_names.index(server)],
                                   env=env, metrics=metrics))  # fmt: skip
    nginx_log = str(cfg.log_dir / "nginx-error.log")
    nginx = ["nginx", "-e", nginx_log, "-c", str(nginx_conf), "-g", "daemon off;"]
    table.append(Service("nginx", nginx, port=cfg.nginx_https_port, port_var="NGINX_HTTPS_PORT",
                         stop_signal=signal.SIGQUIT, prepare=_prepare_nginx,
                         marker=str(nginx_conf)))  # fmt: skip
    return {service.name: service for service in table}


def _live_service(cfg: Settings, server: str, *, port: int, env: dict[str, str], metrics: Path) -> Service:
    """The server's Socket.IO process (``manage.py live_server``, live/server.py)."""
    origins = ",".join(f"https://{host}:{cfg.nginx_https_port}" for host in ("localhost", "127.0.0.1"))
    # A short drain and token recheck keep restarts and the revocation test quick.
    live_env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics / "live"), "LIVE_DRAIN_SECONDS": "2",
                "LIVE_TOKEN_RECHECK_SECONDS": "2", "LIVE_ALLOWED_ORIGINS": origins}  # fmt: skip
    argv = [str(VENV_BIN / "python"), str(REPO / "manage.py"), "live_server", "--bind", f"127.0.0.1:{port}"]
    return Service(f"live-{server}", argv, port=port, port_var="LIVE_PORTS", env=live_env,
                   marker=f"live_server --bind 127.0.0.1:{port}", ready_path="/health/live",
                   prepare=_fresh_metrics_folder(metrics / "live"))  # fmt: skip


APP_TIER_PREFIXES = ("app", "worker-", "beat-", "live-", "nginx")


# --- commands ----------------------------------------------------------------------------


def _say(message: str) -> None:
    print(message, flush=True)


def _ensure_dirs(cfg: Settings) -> None:
    for folder in (cfg.state_dir, cfg.log_dir, cfg.pid_dir, cfg.run_dir):
        folder.mkdir(parents=True, exist_ok=True)
    _chown_to(cfg.run_dir, PG_USER)  # PostgreSQL's unix socket lives here
    (cfg.state_dir / "cluster.env").write_text(
        "".join(f"{key}={value}\n" for key, value in sorted(cfg.app_env().items()))
    )


def _manage(cfg: Settings, *args: str, step: str, env: dict[str, str] | None = None) -> str:
    return _run(
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


def up(cfg: Settings | None = None, *, only_infra: bool = False) -> None:
    cfg = cfg or Settings()
    raise_file_limit()
    _ensure_dirs(cfg)
    table = services(cfg)
    infra = [name for name in table if not name.startswith(APP_TIER_PREFIXES)]
    app_tier = [] if only_infra else [name for name in table if name.startswith(APP_TIER_PREFIXES)]
    steps: list[tuple[str, Callable[[], object]]] = []

    def start(name: str) -> Callable[[], object]:
        def run() -> object:
            was_running = recorded_pid(table[name], cfg) is not None
            pid = start_service(table[name], cfg)
            if name in ("pg-primary", "pg-replica"):
                port = cfg.pg_primary_port if name == "pg-primary" else cfg.pg_replica_port
                _wait_pg_ready(cfg, port, name)
            if name == "pg-primary":
                _bootstrap_primary(cfg)
            return f"pid {pid}" + (" (already running)" if was_running else "")

        return run

    for name in infra:
        port = table[name].port
        steps.append((f"{name}" + (f" :{port}" if port else ""), start(name)))
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

    width = max(len(label) for label, _ in steps)
    for index, (label, action) in enumerate(steps, 1):
        prefix = f"[{index:2}/{len(steps)}] {label.ljust(width)}"
        try:
            result = action()
        except ClusterError as error:
            _say(f"{prefix}  FAILED")
            raise ClusterError(f"step '{label}': {error}") from None
        _say(f"{prefix}  ok {result if isinstance(result, str) else ''}".rstrip())
    if not only_infra:
        _say(
            "\nThe cluster is up:\n"
            f"  https://localhost:{cfg.nginx_https_port}/        NGINX (self-signed certificate)\n"
            f"  https://localhost:{cfg.nginx_https_port}/admin/  user 'admin', "
            f"password in {cfg.state_dir / 'admin-password'}\n"
            f"  http://127.0.0.1:{cfg.app_ports[0]}/health       one app server directly\n"
            f"  logs: {cfg.log_dir}/   stop: make down"
        )


def down(cfg: Settings | None = None) -> list[str]:
    cfg = cfg or Settings()
    table = services(cfg)
    app_tier = [name for name in table if name.startswith(APP_TIER_PREFIXES)]
    infra = [name for name in table if name not in app_tier]
    stopped = stop(app_tier, cfg)
    # The replica before the primary, PgBouncer before both.
    stopped += stop(["pgbouncer"], cfg)
    stopped += stop([name for name in infra if name.startswith("redis-")], cfg)
    stopped += stop(["pg-replica"], cfg)
    stopped += stop(["pg-primary"], cfg)
    return stopped


def status(cfg: Settings | None = None) -> list[tuple[str, int | None, int | None, str]]:
    cfg = cfg or Settings()
    return [
        (name, recorded_pid(service, cfg), service.port, service.port_var)
        for name, service in services(cfg).items()
    ]


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
    cfg = Settings()
    try:
        if command == "up":
            up(cfg, only_infra="--infra" in args)
        elif command == "down":
            stopped = down(cfg)
            _say(f"stopped {len(stopped)} processes" + (f": {', '.join(stopped)}" if stopped else ""))
        elif command == "status":
            for name, pid, port, var in status(cfg):
                where = f":{port} ({var})" if port else ""
                _say(f"{name:16} {'running pid ' + str(pid) if pid else 'stopped':20} {where}")
        elif command in ("start", "stop", "restart") and len(args) == 1:
            table = services(cfg)
            if args[0] not in table:
                print(f"unknown process '{args[0]}'; one of: {', '.join(table)}", file=sys.stderr)
                return 1
            raise_file_limit()
            _ensure_dirs(cfg)
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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
