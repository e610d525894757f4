"""The scheduled jobs. Each is declared with ``@job`` (jobs.registry): lock, ledger, catch-up
and outcome are handled there; the body only does the work, in fenced batches."""

from django.conf import settings

from jobs import services
from jobs.registry import JobContext, job


@job(
    name="recurring-messages",
    task_name="jobs.recurring_messages",
    interval_setting="JOBS_RECURRING_MESSAGES_INTERVAL_SECONDS",
)
def recurring_messages(ctx: JobContext) -> None:
    """Queue the outbound messages of every recurring message due at the tick."""
    services.recurring_messages_run(ctx=ctx, batch_size=settings.JOBS_RECURRING_MESSAGES_BATCH_SIZE)


@job(
    name="phone-linking-recovery",
    task_name="jobs.phone_linking_recovery",
    interval_setting="JOBS_PHONE_LINKING_RECOVERY_INTERVAL_SECONDS",
)
def phone_linking_recovery(ctx: JobContext) -> None:
    """Retry phone links stuck in pending; give up after the configured attempts."""
    services.phone_links_recover(ctx=ctx)
