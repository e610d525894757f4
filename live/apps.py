from django.apps import AppConfig


class LiveConfig(AppConfig):
    """Live updates: messaging's committed changes pushed to the church's browsers over Socket.IO."""

    name = "live"

    def ready(self) -> None:
        from live import events
        from messaging.events import message_changed

        message_changed.connect(events.on_message_changed, dispatch_uid="live.events.on_message_changed")
