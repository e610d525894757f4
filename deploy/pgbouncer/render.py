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
    # Seconds after which PgBouncer cancels a query: a little over the role's statement_timeout
    # (30 s, deploy/database.py), for a server that cannot enforce it (paused, cut off).
    query_timeout: int = 35
    # `*` = the primary, for any database name: the local cluster's test databases need it; a
    # production rendering serves only its two pools.
    catch_all: bool = False
    # PgBouncer's own TLS modes and files (empty: none).
    client_tls_sslmode: str = "disable"
    client_tls_cert_file: str = ""
    client_tls_key_file: str = ""
    server_tls_sslmode: str = "prefer"
    server_tls_ca_file: str = ""


SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# Client modes that refuse a connection without TLS.
CLIENT_TLS_REQUIRED = ("require", "verify-ca", "verify-full")
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")


class PgBouncerConfigError(ValueError):
    """A TLS value that PgBouncer would refuse, or that would quietly mean no TLS; names its variable."""


def template_values(values: PgBouncerValues) -> dict[str, object]:
    """Every placeholder of the template: the values, plus the lines that depend on them."""
    v = values
    for name, mode in (
        ("PGBOUNCER_CLIENT_TLS_SSLMODE", v.client_tls_sslmode),
        ("PGBOUNCER_SERVER_TLS_SSLMODE", v.server_tls_sslmode),
    ):
        if mode not in SSLMODES:
            raise PgBouncerConfigError(f"{name}={mode!r} is not one of {', '.join(SSLMODES)}")
    # A connection that leaves the host is encrypted and its server verified (issue 22, item 8).
    remote = sorted({host for host in (v.primary_host, v.replica_host) if not _loopback(host)})
    if remote and v.server_tls_sslmode != "verify-full":
        raise PgBouncerConfigError(
            f"PGBOUNCER_SERVER_TLS_SSLMODE={v.server_tls_sslmode}: PostgreSQL at {', '.join(remote)} is "
            "beyond this host, so it must be verify-full (with PGBOUNCER_SERVER_TLS_CA_FILE)"
        )
    if not _loopback(v.listen_addr) and v.client_tls_sslmode not in CLIENT_TLS_REQUIRED:
        raise PgBouncerConfigError(
            f"PGBOUNCER_CLIENT_TLS_SSLMODE={v.client_tls_sslmode}: PgBouncer listens on {v.listen_addr}, "
            "beyond loopback, so clients must use TLS (require, with its certificate and key)"
        )
    client_files = ""
    if v.client_tls_sslmode != "disable":
        if not (v.client_tls_cert_file and v.client_tls_key_file):
            raise PgBouncerConfigError(
                "PGBOUNCER_CLIENT_TLS_SSLMODE needs PGBOUNCER_CLIENT_TLS_CERT_FILE and "
                "PGBOUNCER_CLIENT_TLS_KEY_FILE"
            )
        client_files = (
            f"client_tls_cert_file = {v.client_tls_cert_file}\nclient_tls_key_file = {v.client_tls_key_file}"
        )
    server_files = ""
    if v.server_tls_sslmode in ("verify-ca", "verify-full") and not v.server_tls_ca_file:
        raise PgBouncerConfigError(
            f"PGBOUNCER_SERVER_TLS_SSLMODE={v.server_tls_sslmode} needs PGBOUNCER_SERVER_TLS_CA_FILE"
        )
    if v.server_tls_ca_file:
        server_files = f"server_tls_ca_file = {v.server_tls_ca_file}"
    catch_all = (
        f";; Any other database (the test suite's, for one) goes to the primary.\n"
        f"* = host={v.primary_host} port={v.primary_port}"
        if v.catch_all
        else ";; No catch-all database: a client naming any other database is refused."
    )
    return {
        **asdict(v),
        "catch_all": catch_all,
        "client_tls_files": client_files or ";; (no client TLS files)",
        "server_tls_files": server_files or ";; (no server CA file)",
    }


def render_pgbouncer_ini(values: PgBouncerValues, out: Path) -> Path:
    return render_file(TEMPLATE, template_values(values), out)


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
