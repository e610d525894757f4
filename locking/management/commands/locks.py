"""``manage.py locks list`` and ``manage.py locks release NAME --reason TEXT [--yes] [--by OPERATOR]``."""

from typing import Any

from django.core.management.base import CommandError, CommandParser

from config.cli import ActionCommand, default_operator
from config.text import aligned_rows
from locking.errors import InvalidLockName, LockUnavailable
from locking.selectors import ActiveLock, get_active_job_locks
from locking.services import force_release_job_lock

COLUMNS = ("NAME", "OWNER", "SERVER", "PID", "TOKEN", "ACQUIRED", "EXPIRES IN", "RENEWALS")


def _row(lock: ActiveLock) -> tuple[str, ...]:
    def text(value: object) -> str:
        return "-" if value is None else str(value)

    acquired = lock.acquired.strftime("%Y-%m-%d %H:%M:%S") if lock.acquired else None
    return (
        lock.name,
        lock.owner,
        lock.server,
        text(lock.pid),
        text(lock.token),
        text(acquired),
        f"{lock.expires_in:.1f}s",
        text(lock.renewals),
    )


class Command(ActionCommand):
    help = "List the distributed locks held now, or force-release one."
    errors = (InvalidLockName, LockUnavailable)
    actions = {
        "list": "a table of the locks a quorum of nodes holds",
        "release": "force-release one lock (asks first)",
    }

    def add_action_arguments(self, parsers: dict[str, CommandParser]) -> None:
        release = parsers["release"]
        release.add_argument("name")
        release.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        release.add_argument("--reason", required=True, help="why; the audit keeps it for the next operator")
        # Resolved when used, not here: without a passwd entry for the uid even `locks list` failed.
        release.add_argument("--by", help="the operator the audit records (default: this user)")

    def _list(self, options: dict[str, Any]) -> None:
        rows = [COLUMNS, *(_row(lock) for lock in get_active_job_locks())]
        for line in aligned_rows(rows):
            self.stdout.write(line)
        if len(rows) == 1:
            self.stdout.write("(no lock is held)")

    def _release(self, options: dict[str, Any]) -> None:
        name, reason = options["name"], options["reason"].strip()
        if not reason:
            raise CommandError("--reason must say why the lock is taken away")
        by = options["by"] or default_operator()
        held = next((lock for lock in get_active_job_locks() if lock.name == name), None)
        if held is None:
            raise CommandError(f"no lock named {name!r} is held")
        if not options["yes"]:
            holder = f"{held.owner} (token {held.token}, {held.expires_in:.1f}s left)"
            answer = input(f"Force-release {name!r} held by {holder}? [y/N] ")
            if answer.strip().lower() not in {"y", "yes"}:
                self.stdout.write("Not released.")
                return
        if force_release_job_lock(name, by=by, reason=reason):
            self.stdout.write(self.style.SUCCESS(f"Released {name!r}; the audit records {by!r}."))
        else:
            raise CommandError(f"lock {name!r} was released by its holder meanwhile")
