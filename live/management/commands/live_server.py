"""``manage.py live_server [--bind HOST:PORT ...]``: the Socket.IO server (live/server.py)."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from live import server


def parse_bind(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise CommandError(f"--bind {value!r} is not HOST:PORT (e.g. 127.0.0.1:8001); set it or LIVE_BIND")
    return host.strip("[]"), int(port)


class Command(BaseCommand):
    help = "Serve Socket.IO live updates (WebSocket) with /health/live, /health/ready and /metrics."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--bind", action="append", default=None, help="HOST:PORT, once per address (default: LIVE_BIND)"
        )
        parser.add_argument("--drain-seconds", type=float, default=None, help="default: LIVE_DRAIN_SECONDS")

    def handle(self, *args: Any, **options: Any) -> None:
        binds = [parse_bind(value) for value in options["bind"] or [settings.LIVE_BIND]]
        server.run(binds=binds, drain_seconds=options["drain_seconds"])
