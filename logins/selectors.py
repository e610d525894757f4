"""Reads: may this client try this account's password now, and the cache keys that say so."""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.http import HttpRequest

from config.clients import Caller, client_address

FAILURES_PREFIX = "login-failures:"  # one account from one client address (or an unknown-name bucket)
LOCKED_PREFIX = "login-locked:"  # the same pair, locked until the stored Unix time
ACCOUNT_FAILURES_PREFIX = "login-account-failures:"  # one account, from every address
THROTTLED_PREFIX = "login-throttled:"  # one account, throttled for addresses it is not known at
KNOWN_PREFIX = "login-known:"  # an address this account logged in from
UNKNOWN_CLIENT = "unknown"


@dataclass(frozen=True)
class LoginKeys:
    """The cache keys of one login attempt: ``account`` is None for a username no user has."""

    failures: str
    locked: str
    known: str
    account: str | None


def account_key(username: str) -> str:
    """The cache key part for a username: case-folded (one account, however it is typed), hashed."""
    return hashlib.sha256(username.strip().casefold().encode()).hexdigest()


def client_key(request: HttpRequest | None) -> str:
    """The client's address as the lockout counts it: the one ``config.clients`` derives (the
    peer, or ``X-Forwarded-For`` behind a trusted proxy), an IPv6 client by its /64 (one
    subscriber's network, not one of its countless addresses); ``"unknown"`` when it cannot be
    told."""
    address = None if request is None else client_address(Caller.from_environ(request.META))
    if address is None:
        return UNKNOWN_CLIENT
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _account_exists(username: str) -> bool:
    user_model = get_user_model()
    lookup = {f"{user_model.USERNAME_FIELD}__iexact": username.strip()}
    return bool(username.strip()) and user_model._default_manager.filter(**lookup).exists()


def login_keys(*, username: str, client: str) -> LoginKeys:
    """The keys of ``username`` tried from ``client``.

    A username no user has shares one of ``LOGIN_UNKNOWN_USERNAME_BUCKETS`` buckets (by the hash
    of name and address) with others: however many made-up names an attacker sends, they add at
    most two keys per bucket to the cache's Redis (which evicts nothing), and they still lock
    after as many failures as a real account does, so the answers tell no name apart.
    """
    pair = hashlib.sha256(f"{username.strip().casefold()}\0{client}".encode()).hexdigest()
    if not _account_exists(username):
        bucket = int(pair, 16) % settings.LOGIN_UNKNOWN_USERNAME_BUCKETS
        part = f"unknown:{bucket}"
        return LoginKeys(FAILURES_PREFIX + part, LOCKED_PREFIX + part, KNOWN_PREFIX + part, None)
    return LoginKeys(FAILURES_PREFIX + pair, LOCKED_PREFIX + pair, KNOWN_PREFIX + pair, account_key(username))


def _remaining(until: object, now: float) -> int:
    return 0 if until is None else max(0, math.ceil(float(str(until)) - now))


def refused_seconds(keys: LoginKeys, *, now: float | None = None) -> int:
    """Whole seconds before the attempt ``keys`` name may check a password; 0: it may now."""
    now = time.time() if now is None else now
    throttled = None if keys.account is None else THROTTLED_PREFIX + keys.account
    found = cache.get_many([key for key in (keys.locked, keys.known, throttled) if key is not None])
    seconds = _remaining(found.get(keys.locked), now)
    if throttled is not None and keys.known not in found:
        seconds = max(seconds, _remaining(found.get(throttled), now))
    return seconds


def login_refused_seconds(*, username: str, client: str, now: float | None = None) -> int:
    """Whole seconds before ``client`` may try ``username``'s password again; 0 when it may now.

    Refused while this address is locked for this account (its own failures), or while the
    account is throttled after failures from many addresses, unless this address is one the
    account logged in from (its owner's are never throttled).
    """
    return refused_seconds(login_keys(username=username, client=client), now=now)
