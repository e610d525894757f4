"""Celery tasks: thin, each calls one service."""

from collections import Counter

from celery import shared_task

from messaging.sending import services


@shared_task(name="messaging.send_messages", acks_late=True)
def send_messages(*, message_ids: list[int]) -> dict[str, int]:
    """Hand queued messages to the SMS provider; each ends sent or failed (with its error)."""
    delivered = services.messages_deliver(message_ids=message_ids)
    counts = Counter(message.status for message in delivered)
    if len(delivered) < len(message_ids):
        counts["missing"] = len(message_ids) - len(delivered)
    return dict(counts)
