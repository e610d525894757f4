from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class LoginsConfig(AppConfig):
    name = "logins"
    default = True  # the app's own config; AdminConfig below is named in INSTALLED_APPS

    def ready(self) -> None:
        from logins import checks, signals  # noqa: F401 (connects the receivers, registers the checks)


class AdminConfig(admin_apps.AdminConfig):
    """Django's admin, on the site that asks for a second factor (``logins.admin_site``)."""

    default = False
    default_site = "logins.admin_site.TwoFactorAdminSite"
