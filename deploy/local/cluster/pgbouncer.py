"""PgBouncer: its ini and auth file, rendered from the deploy template with the cluster's values."""

from __future__ import annotations

from collections.abc import Callable
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


def pgbouncer_values(
    cfg: Settings, *, auth_file: Path, listen_port: int | None = None, haproxy_ports: list[int] | None = None
) -> PgBouncerValues:
    """The deployment template's values for this cluster: loopback hosts, the cluster's ports
    (by default the first PgBouncer's: its own port, the first HAProxy's)."""
    primary_port, replica_port = haproxy_ports or (cfg.pg_primary_port, cfg.pg_replica_port)
    return PgBouncerValues(
        db_name=cfg.db_name,
        primary_host="127.0.0.1",
        primary_port=primary_port,
        replica_host="127.0.0.1",
        replica_port=replica_port,
        listen_addr="127.0.0.1",
        listen_port=listen_port or cfg.pgbouncer_port,
        auth_file=auth_file,
        catch_all=True,  # the test suites' databases (test_<name>) go through it too
    )


def pgbouncer_ini_file(cfg: Settings, name: str) -> Path:
    return cfg.state_dir / name / "pgbouncer.ini"


def prepare_pgbouncer(name: str, port: int, haproxy_ports: list[int]) -> Callable[[Settings], None]:
    """Each PgBouncer (``pgbouncer``, ``pgbouncer2``) has its own folder, ini and auth file: the
    same pools, on its own listening port, towards the HAProxy beside it."""

    def make(cfg: Settings) -> None:
        ini = pgbouncer_ini_file(cfg, name)
        ini.parent.mkdir(parents=True, exist_ok=True)
        auth_file = write_pgbouncer_auth_file(cfg, ini.parent / "userlist.txt")
        values = pgbouncer_values(cfg, auth_file=auth_file, listen_port=port, haproxy_ports=haproxy_ports)
        render_pgbouncer_ini(values, ini)

    return make
