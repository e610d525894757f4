"""PostgreSQL: the application's roles and database, made on whichever member leads (Patroni made
the members, the superuser and the replication user: deploy/local/cluster/patroni.py)."""

from __future__ import annotations

from deploy.local.cluster.patroni import leader_port
from deploy.local.cluster.processes import run
from deploy.local.cluster.settings import PG_BIN, PG_USER, Settings


def psql(cfg: Settings, sql: str, *, db: str = "postgres", step: str) -> str:
    """Run SQL as the superuser on the current leader, over its unix socket."""
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
            str(leader_port(cfg)),
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
