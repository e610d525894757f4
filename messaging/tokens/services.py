"""Writes: logging in (a new token), logging out (one token, or all of a user's), purging expired
tokens."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.http import HttpRequest
from django.utils import timezone

from config.databases import PRIMARY_DB_ALIAS
from logins.selectors import client_key, login_refused_seconds
from logins.services import login_success_record
from messaging.errors import AccountLockedOut
from messaging.models import ApiToken, Church
from messaging.tokens import cache, selectors


@dataclass(frozen=True)
class Login:
    token: str  # the raw bearer token, shown once
    church: Church


def staff_login(*, request: HttpRequest | None, username: str, password: str) -> Login | None:
    """A new bearer token for a church staff member's username and password; None when they are
    wrong or the user is on no church's staff.

    Raises ``AccountLockedOut`` while the client's address is locked out of the account, or the
    account is throttled for it, after too many failed logins (``logins``, which counts the
    failures ``authenticate`` signals), whatever the password.
    """
    client = client_key(request)
    refused = login_refused_seconds(username=username, client=client)
    if refused:
        raise AccountLockedOut(refused)
    user = authenticate(request, username=username, password=password)
    staff = getattr(user, "staff", None) if user is not None else None
    if user is None or staff is None:
        return None
    login_success_record(username=username, client=client)
    return Login(token=api_token_create(user=user), church=staff.church)


def api_token_create(*, user: User) -> str:
    """A new bearer token for ``user``; only its hash is stored, the raw value is returned once."""
    raw_token = secrets.token_urlsafe(32)
    ApiToken.objects.create(
        user=user,
        key_hash=selectors.api_token_hash(raw_token=raw_token),
        expires_at=timezone.now() + timedelta(hours=settings.MESSAGING_API_TOKEN_TTL_HOURS),
    )
    return raw_token


def api_token_revoke(*, raw_token: str) -> None:
    """Delete the token, then tell every server (their cached copies go before the next request).

    Raises ``cache.RevocationNotPublished`` when the other servers could not be told; the
    token is deleted all the same and a retry publishes again.
    """
    ApiToken.objects.filter(key_hash=selectors.api_token_hash(raw_token=raw_token)).delete()
    cache.token_cache.bump()


def api_tokens_revoke_all(*, user_id: int, using: str = PRIMARY_DB_ALIAS) -> int:
    """Delete every token of the user and tell every server once the deletion commits (at once
    outside a transaction); returns how many there were.

    Called by ``POST /auth/logout-all`` and, through ``signals``, when the user's password
    changes, the user is deactivated or moves to another church. Raises
    ``cache.RevocationNotPublished`` (outside a transaction) when the other servers could not
    be told; the tokens are deleted all the same.
    """
    deleted, _ = ApiToken.objects.using(using).filter(user_id=user_id).delete()
    cache.token_cache.bump_on_commit(using=using)
    return deleted


def api_tokens_purge_expired(*, now: datetime | None = None) -> int:
    """Delete tokens expired by ``now`` (they already authenticate nobody); returns how many.
    The retention job calls it with ``now`` set back by the retention setting."""
    deleted, _ = (
        ApiToken.objects.using(PRIMARY_DB_ALIAS).filter(expires_at__lte=now or timezone.now()).delete()
    )
    return deleted
