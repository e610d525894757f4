"""Fill one family of deployment templates from settings (the environment) into a folder.

python manage.py render_deploy pgbouncer --out /tmp/rendered
"""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from deploy.keepalived.render import KeepalivedConfigError
from deploy.nginx.render import NginxConfigError
from deploy.patroni.render import PatroniConfigError
from deploy.pgbouncer.render import PgBouncerConfigError
from deploy.redis.acl import RedisAclError
from deploy.render import MissingTemplateValue
from deploy.selectors import UnsafeDeployValue
from deploy.services import RENDERERS, deploy_render


class Command(BaseCommand):
    help = "Render the nginx, keepalived, pgbouncer, patroni, redis, k8s or systemd templates for this host."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("target", help=f"one of: {', '.join(RENDERERS)}")
        parser.add_argument("--out", type=Path, help="folder to write into (required)")

    def handle(self, *args: Any, **options: Any) -> None:
        target: str = options["target"]
        if target not in RENDERERS:
            raise CommandError(f"unknown target '{target}'; one of: {', '.join(RENDERERS)}")
        out: Path | None = options["out"]
        if out is None:
            raise CommandError("--out FOLDER is required")
        if out.exists() and not out.is_dir():
            raise CommandError(f"--out {out} exists and is not a folder")
        try:
            written = deploy_render(target=target, out=out)
        except MissingTemplateValue as error:
            raise CommandError(error.args[0]) from None
        except (
            KeepalivedConfigError,
            NginxConfigError,
            PgBouncerConfigError,
            PatroniConfigError,
            RedisAclError,
            UnsafeDeployValue,
        ) as error:
            raise CommandError(str(error)) from None
        for path in written:
            self.stdout.write(str(path))
