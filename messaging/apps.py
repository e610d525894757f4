from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"

    def ready(self) -> None:
        from messaging.tokens import signals

        signals.connect()
        # Register messaging's Celery tasks and its jobs (``@job``, with the jobs framework) in
        # every process: the services enqueue ``messaging.send_messages`` by name, and each
        # process must know every job from start-up, not only workers after autodiscovery.
        from messaging import jobs, tasks  # noqa: F401
