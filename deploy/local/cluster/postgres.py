"""PostgreSQL: the primary's data folder and roles, and the streaming replica made from it."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from deploy.local.cluster.processes import chown_to, run
from deploy.local.cluster.settings import PG_BIN, PG_USER, ClusterError, Settings


def pg_data(cfg: Settings, role: str) -> Path:
    return cfg.state_dir / "pg" / role


def psql(cfg: Settings, sql: str, *, db: str = "postgres", step: str) -> str:
    return run(
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


def _new_data_folder(cfg: Settings, role: str) -> Path | None:
    """An empty data folder owned by the postgres user, or None when one was made before."""
    data = pg_data(cfg, role)
    if (data / "PG_VERSION").exists():
        return None
    data.mkdir(parents=True, exist_ok=True)
    chown_to(data, PG_USER)
    data.chmod(0o700)
    return data


def prepare_primary(cfg: Settings) -> None:
    data = _new_data_folder(cfg, "primary")
    if data is None:
        return
    run(
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
            # synchronous_commit stays on (set again for older clusters in bootstrap_primary):
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


def bootstrap_primary(cfg: Settings) -> None:
    """Roles and the database; idempotent, run on every ``up``.

    Passwords are set only when a role is created: setting one again makes a new SCRAM salt,
    and a running PgBouncer, whose auth file holds the old secret, could no longer log in.
    """
    user, password, db = cfg.db_user, cfg.db_password, cfg.db_name
    psql(
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
    exists = psql(cfg, f"SELECT 1 FROM pg_database WHERE datname = '{db}'", step="find database")
    if not exists.strip():
        psql(cfg, f'CREATE DATABASE "{db}" OWNER "{user}"', step="create database")
    # Clusters made when the local default was off: commits visible before streaming (ADR 0004).
    psql(cfg, "ALTER SYSTEM SET synchronous_commit = on", step="synchronous commit")
    psql(cfg, "SELECT pg_reload_conf()", step="reload configuration")


def prepare_replica(cfg: Settings) -> None:
    data = _new_data_folder(cfg, "replica")
    if data is None:
        return
    # A slot left over from an earlier replica would make pg_basebackup -C fail.
    psql(
        cfg,
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
        "WHERE slot_name = 'replica1' AND NOT active",
        step="drop old replication slot",
    )
    run(
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


def wait_pg_ready(cfg: Settings, port: int, name: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        result = subprocess.run(
            [str(PG_BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port)], check=False
        )
        if result.returncode == 0:
            return
        time.sleep(0.2)
    raise ClusterError(f"{name} did not accept connections within 60s (log: {cfg.log_dir / (name + '.log')})")
