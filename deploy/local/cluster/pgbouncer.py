"""PgBouncer: its ini and auth file, rendered from the deploy template with the cluster's values."""

from __future__ import annotations

from pathlib import Path

from deploy.local.cluster.postgres import psql
from deploy.local.cluster.processes import chown_to
from deploy.local.cluster.settings import PG_USER, Settings
from deploy.pgbouncer.render import (
    PgBouncerValues,
    auth_file_query,
    auth_file_roles,
    render_pgbouncer_ini,
)


def write_pgbouncer_auth_file(cfg: Settings, out: Path) -> Path:
    """The SCRAM secrets PgBouncer checks clients against, read from the database itself.

    Reading ``pg_authid`` needs a superuser: here that is psql as the ``postgres`` OS user over
    the unix socket; elsewhere ``manage.py pgbouncer_auth_file --dsn`` does the same.
    """
    rows = psql(cfg, auth_file_query(auth_file_roles(db_user=cfg.db_user)), step="read SCRAM secrets")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(rows)
    chown_to(out, PG_USER)
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


def prepare_pgbouncer(cfg: Settings) -> None:
    folder = cfg.state_dir / "pgbouncer"
    folder.mkdir(parents=True, exist_ok=True)
    auth_file = write_pgbouncer_auth_file(cfg, folder / "userlist.txt")
    render_pgbouncer_ini(pgbouncer_values(cfg, auth_file=auth_file), folder / "pgbouncer.ini")
