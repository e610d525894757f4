"""The run ledger: one row per job and tick for the run itself, plus a row per skipped delivery.

Always written and read on the primary (``using(PRIMARY_DB_ALIAS)``): a replica may not have the
row a moment-ago delivery wrote, and the ledger is what stops a second run.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.db.models import Q


class Outcome(models.TextChoices):
    # The run of a tick (at most one live row per job and tick).
    RUNNING = "running", "running"
    SUCCESS = "success", "success"
    FAILED = "failed", "failed"
    LOST_LOCK = "lost-lock", "lost lock"
    SKIPPED_MISSED = "skipped-missed", "skipped: missed, older than the catch-up window"
    # A delivery that did not run (any number of rows per job and tick).
    SKIPPED_HELD = "skipped-held", "skipped: lock held by another server"
    SKIPPED_DUPLICATE = "skipped-duplicate", "skipped: tick already run"
    SKIPPED_UNAVAILABLE = "skipped-unavailable", "skipped: lock quorum unavailable"
    SKIPPED_PAUSED = "skipped-paused", "skipped: job paused by an operator"
    SKIPPED_EARLY = "skipped-early", "skipped: tick ahead of the database clock"


RUN_OUTCOMES = (Outcome.RUNNING, Outcome.SUCCESS, Outcome.FAILED, Outcome.LOST_LOCK, Outcome.SKIPPED_MISSED)
DELIVERY_SKIPS = (
    Outcome.SKIPPED_HELD,
    Outcome.SKIPPED_DUPLICATE,
    Outcome.SKIPPED_UNAVAILABLE,
    Outcome.SKIPPED_PAUSED,
    Outcome.SKIPPED_EARLY,
)


class JobRun(models.Model):
    """What happened to one delivery of one tick of one job.

    Run rows (``running`` ... ``skipped-missed``) are unique per (job, tick) unless
    ``superseded``: a retry after a failure or a lost lock marks the previous attempt superseded
    and inserts the next one, so the history stays while at most one attempt is live. Skip rows
    (``skipped-held``, ``skipped-duplicate``, ``skipped-unavailable``, ``skipped-early``) record
    deliveries that did not run; there can be any number of them.
    """

    job = models.CharField(max_length=64)
    tick = models.DateTimeField(help_text="the epoch-aligned slot this run belongs to")
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    attempt = models.PositiveSmallIntegerField(default=1)
    superseded = models.BooleanField(default=False, help_text="a later attempt of the same tick replaced it")
    caught_up = models.BooleanField(default=False, help_text="run by a later tick's delivery (catch-up)")
    server = models.CharField(max_length=200)
    pid = models.IntegerField()
    task_id = models.CharField(max_length=255, blank=True)
    lock_token = models.BigIntegerField(null=True, blank=True)
    started = models.DateTimeField()
    finished = models.DateTimeField(null=True, blank=True)
    last_write_at = models.DateTimeField(
        null=True, blank=True, help_text="when its last fenced batch was written (inside that transaction)"
    )
    error = models.TextField(blank=True)
    counts = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-started", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["job", "tick"],
                condition=Q(superseded=False) & Q(outcome__in=[o.value for o in RUN_OUTCOMES]),
                name="jobrun_one_live_run_per_tick",
            )
        ]
        indexes = [
            models.Index(fields=["job", "tick"], name="jobrun_job_tick"),
            models.Index(fields=["started"], name="jobrun_started"),
        ]

    def __str__(self) -> str:
        return f"{self.job} @ {self.tick:%Y-%m-%d %H:%M:%S} ({self.outcome})"

    @property
    def duration(self) -> timedelta | None:
        return None if self.finished is None else self.finished - self.started


class JobPause(models.Model):
    """An operator's pause of one job (``manage.py jobs pause``): while the row exists, every
    server's delivery of the job records ``skipped-paused`` and runs nothing. Resuming deletes
    it; the pause's own history is in the ledger's ``skipped-paused`` rows."""

    job = models.CharField(max_length=64, unique=True)
    paused_by = models.CharField(max_length=150)
    paused_at = models.DateTimeField()
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["job"]

    def __str__(self) -> str:
        return f"{self.job} paused by {self.paused_by}"


class RetentionRun(JobRun):
    """The retention job's runs (a view of the ledger for the admin: when it last ran, what it
    deleted from each table)."""

    class Meta:
        proxy = True
        verbose_name = "retention run"
