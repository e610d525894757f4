"""``manage.py replicas status``: each replica's state, lag and WAL positions, measured now.

Exits 1 when a configured replica is not serving reads (unreachable, lagging past
``REPLICA_MAX_LAG_MS``, or not in recovery): reads still work, on the primary, but an operator
or a monitor should know.
"""

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from config.text import aligned_rows
from replicas.lsn import format_lsn
from replicas.selectors import replicas_snapshot


class Command(BaseCommand):
    help = "Read replicas: state, lag (ms) and WAL positions. Exits 1 if one is not serving reads."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["status"], help="status: measure and print every replica")

    def handle(self, *args: Any, **options: Any) -> None:
        snapshot = replicas_snapshot(fresh=True)
        assert snapshot is not None  # a fresh measurement always returns one
        primary = format_lsn(snapshot.primary_lsn) if snapshot.primary_lsn is not None else "?"
        server = f"on {snapshot.primary_server}" if snapshot.primary_server else ""
        self.stdout.write(f"primary WAL position: {primary} {server} {snapshot.primary_error}".rstrip())
        header = ("replica", "state", "lag ms", "replay lsn", "receive lsn", "error", "server")
        rows = [header]
        for state in snapshot.replicas.values():
            shown = state.as_dict()
            rows.append(
                (
                    state.alias,
                    state.status,
                    "-" if shown["lag_ms"] is None else f"{shown['lag_ms']:.1f}",
                    str(shown["replay_lsn"] or "-"),
                    str(shown["receive_lsn"] or "-"),
                    state.error,
                    state.server or "-",
                )
            )
        for line in aligned_rows(rows):
            self.stdout.write(line)
        not_serving = [state.alias for state in snapshot.replicas.values() if not state.healthy]
        if not_serving:
            self.stderr.write(f"not serving reads: {', '.join(not_serving)}")
            sys.exit(1)
