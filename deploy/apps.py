from django.apps import AppConfig
from django.db.models.signals import post_migrate


class DeployConfig(AppConfig):
    name = "deploy"
    verbose_name = "Deployment templates"

    def ready(self) -> None:
        from deploy.database import apply_after_migrate

        # Every migrate sets the role's statement and lock timeouts (deploy/database.py).
        post_migrate.connect(apply_after_migrate, dispatch_uid="deploy.role_timeouts")
