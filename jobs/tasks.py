"""The jobs framework's own scheduled job. Apps declare theirs with ``@job`` in their own
modules (messaging: ``messaging/jobs.py``)."""

from jobs import retention
from jobs.context import JobContext
from jobs.registry import job


@job(name="retention", interval="JOBS_RETENTION_INTERVAL_SECONDS")
def prune(ctx: JobContext) -> None:
    """Delete what is older than the retention settings, from every registered table."""
    retention.prune_all(ctx)
