"""Reads: whose a bearer token is, and whether a change to a user or staff member ends its tokens."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser

from config.databases import PRIMARY_DB_ALIAS
from messaging.models import StaffMember
from messaging.tokens import cache


def api_token_hash(*, raw_token: str) -> str:
    return cache.token_hash(raw_token=raw_token)


def staff_member_for_token(*, raw_token: str) -> StaffMember | None:
    """The staff member a live bearer token belongs to (church and user loaded), or None.

    Checked against the primary, never a replica, through the per-process cache that every
    revocation drops on every server (messaging/tokens/cache.py): logout, expiry and
    deactivation hold from the next request on. The object is shared by the process's
    requests: read it, never change it.
    """
    staff: StaffMember | None = cache.token_cache.staff_member(raw_token=raw_token)
    return staff


def user_change_ends_tokens(*, user: AbstractBaseUser, using: str = PRIMARY_DB_ALIAS) -> bool:
    """Whether saving ``user`` as it is now ends its tokens: a new password, or deactivation.

    Compared with the row as stored: whoever held the old password (or the account before it
    was switched off) must not keep its access through a token.
    """
    if user._state.adding or user.pk is None:
        return False
    stored = get_user_model().objects.using(using).filter(pk=user.pk).values("password", "is_active").first()
    if stored is None:
        return False
    deactivated = stored["is_active"] and not user.is_active
    return stored["password"] != user.password or deactivated


def staff_change_ends_tokens(*, staff: StaffMember, using: str = PRIMARY_DB_ALIAS) -> bool:
    """Whether saving ``staff`` moves its user to another church (a token serves one church)."""
    if staff._state.adding or staff.pk is None:
        return False
    stored = StaffMember.objects.using(using).filter(pk=staff.pk).values_list("church_id", flat=True).first()
    return stored is not None and stored != staff.church_id
