"""What the operators' management commands share: their sub-commands, and who the operator is
for the audit rows they write."""

from __future__ import annotations

import getpass
import os
from typing import Any, ClassVar

from django.core.management.base import BaseCommand, CommandError, CommandParser


def default_operator() -> str:
    """The operator an audit records when ``--by`` is not given.

    ``getpass.getuser()`` reads LOGNAME/USER, then the passwd entry of the uid; a container
    running as an arbitrary uid (Kubernetes ``runAsUser``, OpenShift) may have neither, and
    ``getuser`` then raises. Fall back to the uid, which still tells operators apart.
    """
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid-{os.getuid()}"


class ActionCommand(BaseCommand):
    """An operators' command whose first argument is one of its ``actions`` (name: help line).

    ``handle`` calls the method ``_<action>(options)``; the ``errors`` an operator can cause (an
    unknown name, no lock quorum) become a ``CommandError``: one line on stderr, exit 1.
    """

    actions: ClassVar[dict[str, str]] = {}
    errors: ClassVar[tuple[type[Exception], ...]] = ()

    def add_arguments(self, parser: CommandParser) -> None:
        choices = parser.add_subparsers(dest="action", required=True)
        self.add_action_arguments(
            {action: choices.add_parser(action, help=text) for action, text in self.actions.items()}
        )

    def add_action_arguments(self, parsers: dict[str, CommandParser]) -> None:
        """Each action's own arguments, on its parser."""

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, f"_{options['action']}")(options)
        except self.errors as exc:
            raise CommandError(str(exc)) from exc
