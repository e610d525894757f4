"""Celery tasks: thin, each calls one service."""

from celery import shared_task

from messaging import services


@shared_task(name="messaging.send_messages", acks_late=True)
def send_messages(*, message_ids: list[int]) -> dict[str, int]:
    """Hand queued messages to the SMS provider; each ends sent or failed (with its error)."""
    counts: dict[str, int] = {}
    for message_id in message_ids:
        message = services.message_deliver(message_id=message_id)
        status = message.status if message is not None else "missing"
        counts[status] = counts.get(status, 0) + 1
    return counts
