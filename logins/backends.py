"""The first authentication backend: refuses a locked address or a throttled account before any
password is checked."""

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from logins.selectors import client_key, login_refused_seconds


class AccountLocked(PermissionDenied):
    def __init__(self, seconds: int) -> None:
        super().__init__(f"too many failed logins for this account; retry in {seconds} s")
        self.seconds = seconds


class LockoutBackend(ModelBackend):
    """Listed before ModelBackend: ``PermissionDenied`` stops ``authenticate()`` at once.

    Django then sends ``user_login_failed``, which does not count this attempt (the address is
    locked or the account throttled), and the login form or the API answers as for a refused
    login. It is a ModelBackend
    for everything else, so a session whose backend is the first in the list (``force_login``,
    ``login()`` without a backend) still finds its user.
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        seconds = login_refused_seconds(username=username or "", client=client_key(request))
        if seconds:
            raise AccountLocked(seconds)
        return None  # not locked: ModelBackend, next in the list, checks the password
