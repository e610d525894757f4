"""What messaging tells the layers above it, after the change is committed.

``message_changed`` is sent once the transaction that changed a message has committed (at once
when no transaction is open), from whichever process made the change: a gunicorn worker for a
webhook, a Celery worker for a send. Receivers get ``event`` (``message.inbound``,
``message.status`` or ``message.sent``) and ``message`` (the row as committed). The live-update
app (``live``) forwards them to the church's connected browsers; messaging itself knows nothing
of who listens (docs/adr/0013-live-updates.md). (``messaging/tokens/signals.py`` is about tokens.)
"""

from __future__ import annotations

from functools import partial

from django.db import transaction
from django.dispatch import Signal

from messaging.models import Message

MESSAGE_INBOUND = "message.inbound"
MESSAGE_STATUS = "message.status"
MESSAGE_SENT = "message.sent"

message_changed = Signal()


def message_changed_on_commit(*, event: str, message: Message, using: str | None = None) -> None:
    """Send ``message_changed`` after the current transaction on ``using`` commits.

    A receiver's failure is logged by Django (``robust``) and never turns a committed change
    into an error for the caller.
    """
    transaction.on_commit(
        partial(message_changed.send_robust, sender=Message, event=event, message=message),
        using=using,
        robust=True,
    )
