"""Writes: count a failed login, lock the address or throttle the account, remember a success;
give an admin user its second factor."""

import time
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import transaction

from logins.selectors import ACCOUNT_FAILURES_PREFIX, THROTTLED_PREFIX, login_keys, refused_seconds


def lockout_seconds(failures: int) -> int:
    """How long an address is locked after its ``failures``-th consecutive failure (0: not yet)."""
    threshold = settings.LOGIN_LOCKOUT_FAILURES
    if failures < threshold:
        return 0
    base, ceiling = settings.LOGIN_LOCKOUT_BASE_SECONDS, settings.LOGIN_LOCKOUT_MAX_SECONDS
    return int(min(ceiling, base * 2 ** min(failures - threshold, 32)))


def _count(key: str) -> int:
    """One more in the failure count under ``key``, forgotten after the window without another."""
    window = settings.LOGIN_FAILURE_WINDOW_SECONDS
    cache.add(key, 0, timeout=window)
    count = int(cache.incr(key))  # atomic in Redis: parallel guesses each count
    cache.touch(key, timeout=window)
    return count


def login_failure_record(*, username: str, client: str) -> int:
    """Count one failed login for ``username`` from ``client``; return the seconds that address
    is now locked for (0: not).

    An attempt refused before its password was checked (locked or throttled) is not counted:
    the lock runs out on schedule instead of growing with every refused try. Past
    ``LOGIN_ACCOUNT_THROTTLE_FAILURES`` failures of the account from all addresses in the window,
    each failure throttles the account for ``LOGIN_ACCOUNT_THROTTLE_SECONDS`` for every address
    it is not known at: one guess per throttle period, however many addresses guess.
    """
    keys = login_keys(username=username, client=client)
    if not username or refused_seconds(keys):
        return 0
    seconds = lockout_seconds(_count(keys.failures))
    if seconds:
        cache.set(keys.locked, time.time() + seconds, timeout=seconds)
    account_failures = 0 if keys.account is None else _count(ACCOUNT_FAILURES_PREFIX + keys.account)
    if keys.account is not None and account_failures >= settings.LOGIN_ACCOUNT_THROTTLE_FAILURES:
        throttle = settings.LOGIN_ACCOUNT_THROTTLE_SECONDS
        cache.set(THROTTLED_PREFIX + keys.account, time.time() + throttle, timeout=throttle)
    return seconds


def login_success_record(*, username: str, client: str) -> None:
    """A successful login: this address starts from zero for the account and is known to it
    (never throttled) for ``LOGIN_KNOWN_ADDRESS_DAYS``. Other addresses' counts stay."""
    keys = login_keys(username=username, client=client)
    cache.delete_many([keys.failures, keys.locked])
    if keys.account is not None:
        cache.set(keys.known, 1, timeout=settings.LOGIN_KNOWN_ADDRESS_DAYS * 86400)


class NotAdminUser(Exception):
    """The username names no active staff user: the admin would not let it in anyway."""


def admin_totp_device_create(*, username: str, name: str = "authenticator", replace: bool = False) -> Any:
    """A confirmed TOTP device (django-otp) for the admin user ``username``; with ``replace``, its
    other TOTP devices are deleted first (a lost phone). Its ``config_url`` (``otpauth://``) is
    what an authenticator app scans or takes typed in; it holds the secret, so show it once."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    user = get_user_model()._default_manager.filter(username=username, is_staff=True, is_active=True).first()
    if user is None:
        raise NotAdminUser(f"no active staff user {username!r}")
    with transaction.atomic():
        if replace:
            TOTPDevice.objects.filter(user=user).delete()
        return TOTPDevice.objects.create(user=user, name=name, confirmed=True)
