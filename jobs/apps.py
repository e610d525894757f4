from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"

    def ready(self) -> None:
        # The framework's own job (retention), known to every process from start-up.
        from jobs import tasks  # noqa: F401
