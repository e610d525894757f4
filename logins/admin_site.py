"""The admin site: with ``ADMIN_TWO_FACTOR`` on, a password is not enough.

A staff user logs in with username, password and a code from a TOTP device (django-otp); the
site lets in only sessions verified that way (``request.user.is_verified()``, kept in the
session by django-otp's middleware). A user without a confirmed device cannot log in until an
operator gives it one (``manage.py admin_totp <username>``). Wrong codes are throttled per device
by django-otp (each failure doubles the wait); wrong passwords count in the lockout as before.
With the setting off (local work, tests) it is Django's admin as it ships. The setting is read
per request, so a test can switch it.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.admin import AdminSite
from django.contrib.admin.forms import AdminAuthenticationForm
from django.http import HttpRequest
from django_otp import devices_for_user
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite


def two_factor_required() -> bool:
    return bool(getattr(settings, "ADMIN_TWO_FACTOR", False))


class TwoFactorLoginForm(OTPAdminAuthenticationForm):
    """Username, password and code in one step when the user has one device (the usual case);
    with several, the form asks which (django-otp's own behaviour)."""

    def _chosen_device(self, user: Any) -> Any:
        chosen = super()._chosen_device(user)
        if chosen is None and not self.cleaned_data.get("otp_device"):
            devices = list(devices_for_user(user))
            if len(devices) == 1:
                return devices[0]
        return chosen


class TwoFactorAdminSite(OTPAdminSite):
    def __init__(self, name: str = "admin") -> None:
        # The usual name: URLs are still reversed as admin:...
        super().__init__(name)

    @property
    def login_form(self) -> Any:
        return TwoFactorLoginForm if two_factor_required() else AdminAuthenticationForm

    @property
    def login_template(self) -> Any:
        return "otp/admin111/login.html" if two_factor_required() else None

    def has_permission(self, request: HttpRequest) -> bool:
        if two_factor_required():
            return super().has_permission(request)
        return AdminSite.has_permission(self, request)
