"""Render ``pgbouncer.ini`` and its SCRAM auth file; shared by ``render_deploy`` and the local cluster.

The pool sizes that the issue promises (transaction mode, 30 server connections per database,
1,000 clients) are the defaults here, so every caller gets the same PgBouncer unless it asks
otherwise.
"""

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from deploy.render import render_file

TEMPLATE = Path(__file__).resolve().parent / "pgbouncer.ini.template"

ADMIN_USER = "pgbouncer_admin"
STATS_USER = "pgbouncer_stats"


@dataclass(frozen=True)
class PgBouncerValues:
    db_name: str
    primary_host: str
    primary_port: int
    replica_host: str
    replica_port: int
    listen_addr: str
    listen_port: int
    auth_file: Path
    admin_user: str = ADMIN_USER
    stats_user: str = STATS_USER
    default_pool_size: int = 30
    max_client_conn: int = 1000
    # The primary never sees more than this many connections for one database, whatever the pools.
    max_db_connections: int = 30
    # Seconds a client may sit idle inside a transaction before PgBouncer disconnects it.
    idle_transaction_timeout: int = 300


def render_pgbouncer_ini(values: PgBouncerValues, out: Path) -> Path:
    return render_file(TEMPLATE, asdict(values), out)


def auth_file_roles(*, db_user: str, admin_user: str = ADMIN_USER, stats_user: str = STATS_USER) -> list[str]:
    """The roles that log in through PgBouncer: the application's and the console's."""
    return sorted({db_user, admin_user, stats_user})


def auth_file_query(roles: Iterable[str]) -> str:
    """SQL that returns the auth file's lines: ``"role" "SCRAM-SHA-256$..."``, one row per role.

    Reading ``pg_authid`` needs a superuser; the roles are quoted as SQL literals here because
    psql (the local cluster's reader) takes no bind parameters.
    """
    literals = ", ".join("'" + role.replace("'", "''") + "'" for role in roles)
    return (
        'SELECT format(\'"%s" "%s"\', rolname, rolpassword) FROM pg_authid '
        f"WHERE rolname IN ({literals}) AND rolpassword IS NOT NULL ORDER BY rolname"
    )
