from django.apps import AppConfig


class LoginsConfig(AppConfig):
    name = "logins"

    def ready(self) -> None:
        from logins import signals  # noqa: F401 (connects the receivers)
