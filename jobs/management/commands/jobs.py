"""``manage.py jobs list | history JOB | run JOB | pause JOB | resume JOB``: the operators' view.

Thin: the work is in ``jobs.operations``. ``run`` runs the current tick in this process through
the same lock and ledger as a beat delivery, so it can never double a tick.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import CommandError, CommandParser

from config.cli import ActionCommand, default_operator
from config.text import aligned_rows
from jobs import operations
from jobs.models import Outcome

# A manual run that did not run its tick, and why (exit 1 with this line).
NOT_RUN = {
    Outcome.SKIPPED_HELD: "another server holds the job's lock (it is running now): try again later",
    Outcome.SKIPPED_UNAVAILABLE: "no quorum of lock nodes answered: the job did not run (fail closed)",
    Outcome.FAILED: "the run failed; see `manage.py jobs history {job}` for the error",
    Outcome.LOST_LOCK: "the run lost its lock; the next holder runs the tick again",
}


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def _seconds(value: float) -> str:
    return f"{value:g}s"


class Command(ActionCommand):
    help = "List the scheduled jobs, show one's history, run its current tick now, pause or resume it."
    errors = (operations.UnknownJob, operations.JobPaused)
    actions = {
        "list": "every job: interval, last tick and outcome, next tick, paused",
        "history": "a job's newest ledger rows, runs and skips",
        "run": "run the current tick now (once, whoever else runs it)",
        "pause": "no server runs the job until it is resumed",
        "resume": "let the job run again from its next tick",
    }

    def add_action_arguments(self, parsers: dict[str, CommandParser]) -> None:
        for action in ("history", "run", "pause", "resume"):
            parsers[action].add_argument("job")
        parsers["history"].add_argument("--limit", type=int, default=20)
        parsers["run"].add_argument("--by", help="the operator the ledger records (default: this user)")
        parsers["pause"].add_argument("--reason", default="", help="why, for the next operator")
        parsers["pause"].add_argument("--by", help="the operator recorded (default: this user)")

    def _list(self, options: dict[str, Any]) -> None:
        rows = [("JOB", "INTERVAL", "LAST TICK", "LAST OUTCOME", "NEXT TICK", "PAUSED")]
        for job in operations.jobs_overview():
            paused = "-" if job.pause is None else f"by {job.pause.paused_by} at {_when(job.pause.paused_at)}"
            rows.append(
                (
                    job.name,
                    _seconds(job.interval),
                    _when(job.last_tick),
                    job.last_outcome or "-",
                    _when(job.next_tick),
                    paused,
                )
            )
        for line in aligned_rows(rows):
            self.stdout.write(line)

    def _history(self, options: dict[str, Any]) -> None:
        if options["limit"] < 1:
            raise CommandError("--limit must be at least 1")
        runs = operations.job_history(options["job"], limit=options["limit"])
        rows = [("TICK", "OUTCOME", "ATTEMPT", "SERVER", "PID", "TOKEN", "STARTED", "DURATION", "ERROR")]
        for run in runs:
            duration = run.duration
            rows.append(
                (
                    _when(run.tick),
                    run.outcome,
                    str(run.attempt),
                    run.server,
                    str(run.pid),
                    "-" if run.lock_token is None else str(run.lock_token),
                    _when(run.started),
                    "-" if duration is None else f"{duration.total_seconds():.3f}s",
                    (run.error.splitlines() or [""])[0][:80],
                )
            )
        for line in aligned_rows(rows):
            self.stdout.write(line)
        if not runs:
            self.stdout.write(f"(job {options['job']!r} has not run yet)")

    def _run(self, options: dict[str, Any]) -> None:
        report = operations.job_run_now(options["job"], by=options["by"] or default_operator())
        tick = _when(report.tick)
        if report.outcome == Outcome.SUCCESS:
            self.stdout.write(self.style.SUCCESS(f"{report.job} tick {tick}: ran ({report.outcome})"))
        elif report.outcome == Outcome.SKIPPED_DUPLICATE:
            self.stdout.write(f"{report.job} tick {tick}: already run, not run again ({report.outcome})")
        else:
            reason = NOT_RUN.get(Outcome(report.outcome), report.outcome).format(job=report.job)
            raise CommandError(f"{report.job} tick {tick}: {report.outcome}: {reason}")

    def _pause(self, options: dict[str, Any]) -> None:
        pause = operations.job_pause(
            options["job"], by=options["by"] or default_operator(), reason=options["reason"]
        )
        self.stdout.write(
            f"{pause.job} paused by {pause.paused_by} at {_when(pause.paused_at)}: "
            "every server skips it (skipped-paused) until `manage.py jobs resume`"
        )

    def _resume(self, options: dict[str, Any]) -> None:
        if operations.job_resume(options["job"]):
            self.stdout.write(f"{options['job']} resumed: it runs from its next tick")
        else:
            self.stdout.write(f"{options['job']} was not paused")
