"""Every login path goes through ``authenticate()``: its signals count failures and successes,
each for the client address the request came from."""

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from logins import services
from logins.selectors import client_key


@receiver(user_login_failed, dispatch_uid="logins.failed")
def _failed(sender: object, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    username = credentials.get("username")
    if isinstance(username, str):
        services.login_failure_record(username=username, client=client_key(request))


@receiver(user_logged_in, dispatch_uid="logins.succeeded")
def _succeeded(sender: object, user: Any, request: Any = None, **kwargs: Any) -> None:
    services.login_success_record(username=user.get_username(), client=client_key(request))
