"""``manage.py ensure_demo_user``: a staff user of a named church, created if missing (safe to rerun)."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from messaging.contacts.services import staff_member_ensure


class Command(BaseCommand):
    help = "Create (or reset the password of) a church staff user for the API; safe to run again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default=settings.MESSAGING_DEMO_USERNAME)
        parser.add_argument("--password", default=settings.MESSAGING_DEMO_PASSWORD)
        parser.add_argument("--church", default="Demo church", help="the church's name")
        parser.add_argument("--time-zone", default="America/New_York")

    def handle(self, *args: Any, **options: Any) -> None:
        staff = staff_member_ensure(
            church_name=options["church"],
            username=options["username"],
            password=options["password"],
            time_zone=options["time_zone"],
        )
        self.stdout.write(
            f"user '{staff.user.username}' is staff of '{staff.church.name}' (id {staff.church.id})"
        )
