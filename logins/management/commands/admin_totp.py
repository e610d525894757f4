"""``manage.py admin_totp <username>``: give an admin user a TOTP device for the two-factor login.

Prints the ``otpauth://`` URL once: the user scans it (as a QR code, e.g. ``qrencode -t ansiutf8``)
or types its secret into an authenticator app, then logs in with username, password and the
app's current code. ``--replace`` removes the user's other TOTP devices first (a lost phone).
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from logins.services import NotAdminUser, admin_totp_device_create


class Command(BaseCommand):
    help = "Give an admin (staff) user a TOTP device; prints its otpauth:// URL once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="authenticator", help="what the device is called in the admin")
        parser.add_argument(
            "--replace", action="store_true", help="delete the user's other TOTP devices first"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            device = admin_totp_device_create(
                username=options["username"], name=options["name"], replace=options["replace"]
            )
        except NotAdminUser as error:
            raise CommandError(str(error)) from error
        self.stdout.write(device.config_url)
