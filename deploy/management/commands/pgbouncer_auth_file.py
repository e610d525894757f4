"""Write PgBouncer's auth file (SCRAM secrets) from the database's own ``pg_authid``.

    PGBOUNCER_AUTH_DSN="host=db.internal user=postgres" python manage.py pgbouncer_auth_file --out PATH

Reading ``pg_authid`` needs a superuser, so the command takes a superuser DSN (``--dsn`` or the
``PGBOUNCER_AUTH_DSN`` variable), never the application's own credentials. The file holds
verifiers, not passwords, but is still written mode 0600.
"""

import os
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from deploy.pgbouncer.auth import pgbouncer_auth_file_write


class Command(BaseCommand):
    help = "Write PgBouncer's SCRAM auth file for the app, admin and stats roles (needs a superuser DSN)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", type=Path, help="file to write (required)")
        parser.add_argument(
            "--dsn",
            default=os.environ.get("PGBOUNCER_AUTH_DSN", ""),
            help="libpq DSN of a superuser on the primary (default: $PGBOUNCER_AUTH_DSN)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        out: Path | None = options["out"]
        dsn: str = options["dsn"]
        if out is None:
            raise CommandError("--out PATH is required")
        if not dsn:
            raise CommandError("give a superuser DSN with --dsn or PGBOUNCER_AUTH_DSN")
        try:
            roles = pgbouncer_auth_file_write(dsn=dsn, db_user=settings.DB_USER, out=out)
        except psycopg.Error as error:
            raise CommandError(f"cannot read pg_authid: {str(error).strip().splitlines()[0]}") from None
        self.stdout.write(f"{out}: {', '.join(roles)}")
