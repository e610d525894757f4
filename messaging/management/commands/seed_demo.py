"""``manage.py seed_demo --churches N --contacts N --messages N [--if-empty]``: demo data, fast."""

import argparse
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from messaging.models import Church
from messaging.seeding import demo_data_seed


def _count(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' is not a whole number") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"{number} is negative")
    return number


class Command(BaseCommand):
    help = (
        "Fill the database with demo churches, contacts and messages (totals, spread over the "
        "churches) and the demo staff user, in bulk (COPY), with a progress line per batch."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)

        def one_line_error(message: str) -> None:
            if not getattr(parser, "called_from_command_line", False):
                raise CommandError(message)
            self.stderr.write(f"seed_demo: {message}")
            sys.exit(2)

        parser.error = one_line_error  # type: ignore[method-assign]
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--churches", type=_count, default=3, help="churches to create (default 3)")
        parser.add_argument("--contacts", type=_count, default=30, help="contacts in all (default 30)")
        parser.add_argument("--messages", type=_count, default=100, help="messages in all (default 100)")
        parser.add_argument("--if-empty", action="store_true", help="do nothing if any church exists already")

    def handle(self, *args: Any, **options: Any) -> None:
        churches, contacts, messages = options["churches"], options["contacts"], options["messages"]
        if churches < 1:
            raise CommandError("--churches must be at least 1")
        if messages and not contacts:
            raise CommandError("--messages needs --contacts of at least 1")
        if options["if_empty"] and Church.objects.exists():
            self.stdout.write("seed_demo: churches exist already; nothing to do (--if-empty)")
            return
        started = time.monotonic()

        def progress(kind: str, done: int, total: int) -> None:
            # One line per batch: readable in a log file as well as on a terminal.
            self.stdout.write(
                f"seed_demo: {kind} {done:,}/{total:,} ({100 * done // max(total, 1)} %), "
                f"{time.monotonic() - started:.1f} s"
            )

        result = demo_data_seed(churches=churches, contacts=contacts, messages=messages, progress=progress)
        self.stdout.write(
            f"seeded {result.churches} churches, {result.contacts} contacts, {result.messages} messages "
            f"in {time.monotonic() - started:.1f} s; demo user '{settings.MESSAGING_DEMO_USERNAME}'"
        )
