"""PgBouncer's auth file, read from ``pg_authid`` through a superuser connection."""

import os
from pathlib import Path

import psycopg

from deploy.pgbouncer.render import auth_file_query, auth_file_roles


def pgbouncer_auth_file_write(*, dsn: str, db_user: str, out: Path) -> list[str]:
    """Write ``"role" "SCRAM-SHA-256$..."`` lines for the roles PgBouncer admits; return those roles.

    A role the database does not have (or that has no password) is an error: PgBouncer would
    otherwise refuse that role's logins later, far from the cause.
    """
    wanted = auth_file_roles(db_user=db_user)
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as connection:
        lines = [row[0] for row in connection.execute(auth_file_query(wanted)).fetchall()]
    found = [line.split('"')[1] for line in lines]
    missing = sorted(set(wanted) - set(found))
    if missing:
        raise psycopg.DataError(f"no SCRAM secret in pg_authid for: {', '.join(missing)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write("".join(line + "\n" for line in lines))
    out.chmod(0o600)
    return found
