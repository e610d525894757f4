"""Messaging's scheduled jobs, declared with the jobs framework's ``@job`` (jobs/registry.py), and
the retention of its tables, registered with ``@pruner`` (jobs/retention.py).

The framework runs each tick once across servers (lock, ledger, catch-up, retries: ADR 0008);
the bodies here only do the work, in fenced batches (``ctx.fenced()``). This module is
imported by ``MessagingConfig.ready()``, so every process knows these jobs from start-up, and
beat's schedule gets their entries from the declarations: task ``messaging.<job>``, ticking
every ``MESSAGING_*_INTERVAL_SECONDS`` (``config/settings/components/messaging.py``).

Until the next release each task is also registered under its former name (``jobs.<job>``), so
deliveries a beat of the previous release sends during a rolling deploy still run here.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from config.retry import capped_backoff
from jobs.context import JobContext
from jobs.registry import job
from jobs.retention import prune_in_batches, pruner
from messaging.gateway import SmsGateway, get_gateway
from messaging.inbound import selectors as inbound_selectors
from messaging.inbound import services as inbound
from messaging.models import IdempotentRequest, RecurringMessage
from messaging.recurring import selectors as recurring_selectors
from messaging.recurring import services as recurring
from messaging.sending import services as sending
from messaging.tokens import services as tokens

logger = logging.getLogger(__name__)


@job(
    name="recurring-messages",
    interval="MESSAGING_RECURRING_MESSAGES_INTERVAL_SECONDS",
    aliases=["jobs.recurring_messages"],
)
def recurring_messages(ctx: JobContext) -> None:
    """Queue the outbound messages of every recurring message due at the tick."""
    recurring_messages_run(ctx=ctx, batch_size=settings.MESSAGING_RECURRING_MESSAGES_BATCH_SIZE)


@job(
    name="phone-linking-recovery",
    interval="MESSAGING_PHONE_LINKING_RECOVERY_INTERVAL_SECONDS",
    aliases=["jobs.phone_linking_recovery"],
)
def phone_linking_recovery(ctx: JobContext) -> None:
    """Retry phone links stuck in pending; give up after the configured attempts."""
    phone_links_recover(ctx=ctx)


@job(name="messages-sweep", interval="MESSAGING_SWEEP_INTERVAL_SECONDS", aliases=["jobs.messages_sweep"])
def messages_sweep(ctx: JobContext) -> None:
    """Send what was left behind: messages still queued, and messages stuck mid-send."""
    messages_sweep_run(ctx=ctx)


# --- recurring-messages -------------------------------------------------------------------------

MAX_OCCURRENCES_PER_RUN = 1000  # per recurring message, a guard against a runaway schedule


def recurring_messages_run(*, ctx: JobContext, batch_size: int) -> None:
    """Queue every active recurring message due at the tick, each occurrence once, then advance it.

    Occurrences older than the catch-up window are not sent (the schedule moves past them,
    counted as ``occurrences_skipped``): a message for last week's service is noise.

    Recurring messages share fenced transactions of about ``batch_size`` messages: a church's
    few dozen recipients do not pay a fence check, a ledger update and a commit of their own.
    """
    oldest = ctx.tick - timedelta(seconds=settings.JOBS_CATCH_UP_WINDOW_SECONDS)
    last_id = 0
    with ctx.fenced_group(limit=batch_size, size=_messages_written) as batch:
        while True:
            ctx.lock.ensure_held()
            due = recurring_selectors.recurring_messages_due(tick=ctx.tick, after_id=last_id)
            if not due:
                return
            for recurring_message in due:
                _recurring_message_catch_up(
                    ctx=ctx,
                    recurring_message=recurring_message,
                    oldest=oldest,
                    batch_size=batch_size,
                    batch=batch,
                )
            last_id = due[-1].pk


def _messages_written(counts: Counter[str]) -> int:
    return counts["messages_created"] + counts["messages_existing"]


def _recurring_message_catch_up(
    *,
    ctx: JobContext,
    recurring_message: RecurringMessage,
    oldest: datetime,
    batch_size: int,
    batch: recurring.Batch,
) -> None:
    for _ in range(MAX_OCCURRENCES_PER_RUN):
        occurrence = recurring_message.next_run_at
        if occurrence is None or occurrence > ctx.tick:
            return
        if occurrence < oldest:
            # on to the first occurrence at or after ``oldest``: the window includes its start
            if not recurring.recurring_message_advance(
                recurring_message=recurring_message,
                after=oldest - timedelta(microseconds=1),
                batch=batch,
            ):
                return
            ctx.counts["occurrences_skipped"] += 1
            continue
        recurring.recurring_message_occurrence_create(
            recurring_message=recurring_message,
            occurrence=occurrence,
            batch_size=batch_size,
            batch=batch,
        )
        ctx.counts["occurrences"] += 1
        if not recurring.recurring_message_advance(
            recurring_message=recurring_message, after=occurrence, batch=batch
        ):
            return
    logger.error(
        "recurring message %s: more than %d occurrences due", recurring_message.pk, MAX_OCCURRENCES_PER_RUN
    )


# --- messages-sweep -----------------------------------------------------------------------------

MAX_SWEEP_BATCHES = 100  # per run: a backlog larger than this waits for the next tick


def messages_sweep_run(*, ctx: JobContext, gateway: SmsGateway | None = None) -> None:
    """Enqueue again messages ``queued`` for ``MESSAGING_QUEUED_STALE_SECONDS`` (the broker was
    down at commit, a task was lost), and settle messages ``sending`` for
    ``MESSAGING_SENDING_STUCK_SECONDS`` (their worker died mid-send: resent under the same
    idempotency key, or held for review; ADR 0011). Delivery claims each message before sending,
    so a message enqueued twice is still sent at most once. Each batch commits behind the fence;
    the tasks are published after its commit.
    """
    batch_size = settings.MESSAGING_SWEEP_BATCH
    queued_for = timedelta(seconds=settings.MESSAGING_QUEUED_STALE_SECONDS)
    for _ in range(MAX_SWEEP_BATCHES):
        ctx.lock.ensure_held()
        with ctx.fenced() as counts:
            requeued = sending.messages_requeue_stale(older_than=queued_for, limit=batch_size)
            counts["requeued"] += requeued
        if requeued < batch_size:
            break
    sending_for = timedelta(seconds=settings.MESSAGING_SENDING_STUCK_SECONDS)
    for _ in range(MAX_SWEEP_BATCHES):
        ctx.lock.ensure_held()
        with ctx.fenced() as counts:
            stuck = sending.messages_recover_stuck_sending(
                older_than=sending_for, gateway=gateway, limit=batch_size
            )
            counts["stuck_requeued"] += stuck.requeued
            counts["held_for_review"] += stuck.held_for_review
        if stuck.requeued + stuck.held_for_review < batch_size:
            break


# --- phone-linking-recovery ---------------------------------------------------------------------


def phone_link_backoff(*, attempts: int) -> float:
    """Seconds to wait after ``attempts`` failed attempts before the next one."""
    return capped_backoff(
        attempt=attempts,
        base=settings.MESSAGING_PHONE_LINK_BACKOFF_SECONDS,
        cap=settings.MESSAGING_PHONE_LINK_BACKOFF_MAX_SECONDS,
    )


def phone_links_recover(
    *, ctx: JobContext, gateway: SmsGateway | None = None, now: datetime | None = None
) -> None:
    """Retry links stuck in ``pending``; after ``MESSAGING_PHONE_LINK_MAX_ATTEMPTS`` mark them ``failed``.

    A link is retried when it was created more than ``MESSAGING_PHONE_LINK_STUCK_AFTER_SECONDS`` ago
    and its backoff since the last attempt has passed. Each result is written only if the link
    is still as this run read it (pending, same attempt count), behind the fence, so a second
    run or a stale holder changes nothing.
    """
    now = now or timezone.now()
    gateway = gateway or get_gateway()
    stuck_before = now - timedelta(seconds=settings.MESSAGING_PHONE_LINK_STUCK_AFTER_SECONDS)
    for link in inbound_selectors.phone_links_stuck(
        stuck_before=stuck_before, limit=settings.MESSAGING_PHONE_LINK_BATCH
    ):
        if link.last_attempt_at is not None and (
            now - link.last_attempt_at
        ).total_seconds() < phone_link_backoff(attempts=link.attempts):
            ctx.counts["waiting"] += 1
            continue
        ctx.lock.ensure_held()  # the gateway call itself cannot be fenced: check right before it
        error = inbound.phone_link_attempt(gateway=gateway, phone=link.phone)
        with ctx.fenced() as batch_counts:
            state = inbound.phone_link_record_attempt(
                phone_link=link, error=error, max_attempts=settings.MESSAGING_PHONE_LINK_MAX_ATTEMPTS
            )
            batch_counts[str(state) if state is not None else "changed_meanwhile"] += 1


# --- retention of messaging's tables (run by the jobs framework's `retention` job) -------------


@pruner("messaging.IdempotentRequest")
def idempotent_requests_prune(ctx: JobContext) -> None:
    """Idempotency records older than ``MESSAGING_RETENTION_IDEMPOTENT_REQUESTS_DAYS``: a client
    retrying with the same key after that sends again."""
    cutoff = ctx.tick - timedelta(days=settings.MESSAGING_RETENTION_IDEMPOTENT_REQUESTS_DAYS)
    prune_in_batches(
        ctx,
        label="messaging.IdempotentRequest",
        queryset=IdempotentRequest.objects.filter(created_at__lt=cutoff),
    )


@pruner("messaging.ApiToken")
def expired_tokens_prune(ctx: JobContext) -> None:
    """API tokens that expired more than ``MESSAGING_RETENTION_EXPIRED_TOKENS_DAYS`` ago (they
    authenticate nobody already)."""
    cutoff = ctx.tick - timedelta(days=settings.MESSAGING_RETENTION_EXPIRED_TOKENS_DAYS)
    with ctx.fenced() as counts:
        counts["messaging.ApiToken"] += tokens.api_tokens_purge_expired(now=cutoff)
