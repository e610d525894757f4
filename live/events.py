"""The writing side: publish a committed message change to the church's room on every server.

Runs in whichever process made the change (a gunicorn worker for a webhook, a Celery worker for
a send), through python-socketio's write-only ``RedisManager``: it publishes on the broker
Redis's ``LIVE_CHANNEL``, and every Socket.IO server subscribed there delivers the event to
the clients of that church connected to it. Publishing is one Redis ``PUBLISH`` after the
commit; a failure is logged and counted, never raised into the request or task that made the
change (the change is committed and readable through the API; see ADR 0013).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import socketio
from django.conf import settings

from config.redis_urls import pubsub_options
from live import metrics
from messaging.models import Message
from messaging.serializers import message_json

logger = logging.getLogger(__name__)

NAMESPACE = "/"


def church_room(church_id: int) -> str:
    return f"church:{church_id}"


def message_payload(message: Message) -> dict[str, Any]:
    """The message exactly as the API shows it (``GET /api/messages/{id}``, times with millisecond
    precision), so a client can merge both sources."""
    return message_json(message)


class Publisher(socketio.RedisManager):
    """A write-only ``RedisManager`` whose publish failures reach the caller.

    The library logs and swallows them; here they are counted and logged once with the event.
    """

    def _publish(self, data: Any) -> Any:
        if not getattr(self, "connected", False):
            self._redis_connect()
        try:
            return self.redis.publish(self.channel, self.json.dumps(data))
        except Exception:
            self.connected = False  # a fresh connection next time
            raise


_publishers: dict[int, Publisher] = {}
_publishers_lock = threading.Lock()


def publisher() -> Publisher:
    """One publisher per process: a Redis connection must never be shared across a fork."""
    pid = os.getpid()
    with _publishers_lock:
        existing = _publishers.get(pid)
        if existing is None:
            timeout = settings.LIVE_REDIS_TIMEOUT_SECONDS
            existing = Publisher(
                url=settings.LIVE_REDIS_URL,
                channel=settings.LIVE_CHANNEL,
                write_only=True,
                redis_options=pubsub_options(
                    settings.LIVE_REDIS_URL, socket_timeout=timeout, socket_connect_timeout=timeout
                ),
            )
            _publishers[pid] = existing
        return existing


def publish_message_event(*, event: str, message: Message) -> None:
    """Publish ``event`` with the message's API fields to its church's room; raises on failure."""
    publisher().emit(
        event, message_payload(message), room=church_room(message.church_id), namespace=NAMESPACE
    )


def on_message_changed(sender: object, *, event: str, message: Message, **kwargs: object) -> None:
    """Receiver of ``messaging.events.message_changed`` (sent after the commit)."""
    if not settings.LIVE_EVENTS_ENABLED:
        return
    try:
        publish_message_event(event=event, message=message)
    except Exception as error:
        metrics.events_emitted.labels(event=event, outcome="failed").inc()
        logger.warning(
            "live event not published: %s",
            type(error).__name__,
            extra={"event": event, "message_id": message.pk, "church_id": message.church_id},
        )
        return
    metrics.events_emitted.labels(event=event, outcome="published").inc()
