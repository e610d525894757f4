"""``python manage.py health live|ready|detailed|jobs``: the probe's checks, one aligned line each.

Exits 0 on pass or warn and 1 on fail, so it works as a Kubernetes exec probe.
"""

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from config.text import aligned_rows
from health.report import Report
from health.runner import PROBES


class Command(BaseCommand):
    help = "Run the checks of a probe (live, ready, detailed; jobs for a worker or beat); exit 1 on fail."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("probe", nargs="?", help="live, ready, detailed or jobs")

    def handle(self, *args: Any, probe: str | None = None, **options: Any) -> None:
        if probe not in PROBES:
            raise CommandError(f"unknown probe {probe!r}: use one of {', '.join(PROBES)}")
        report = PROBES[probe]()
        self.stdout.write(format_report(report))
        if report.http_status >= 500:
            sys.exit(1)


def format_report(report: Report) -> str:
    rows = []
    for result in report.results:
        label = f"{result.key} {result.component_id}".rstrip()
        observed = ""
        if result.observed is not None and result.observed.value is not None:
            observed = f"{result.observed.value} {result.observed.unit}".rstrip()
        rows.append((label, result.status.value, observed, result.output))
    rows.append(("overall", report.status.value, "", ""))
    return "\n".join(aligned_rows(rows))
