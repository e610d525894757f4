"""Every login path goes through ``authenticate()``: its signals count failures and clear them."""

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from logins import services


@receiver(user_login_failed, dispatch_uid="logins.failed")
def _failed(sender: object, credentials: dict[str, Any], **kwargs: Any) -> None:
    username = credentials.get("username")
    if isinstance(username, str):
        services.login_failure_record(username=username)


@receiver(user_logged_in, dispatch_uid="logins.succeeded")
def _succeeded(sender: object, user: Any, **kwargs: Any) -> None:
    services.login_failures_clear(username=user.get_username())
