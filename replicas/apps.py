from django.apps import AppConfig


class ReplicasConfig(AppConfig):
    name = "replicas"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from replicas import signals  # noqa: F401  (connects the receivers)
