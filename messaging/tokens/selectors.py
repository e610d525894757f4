"""Reads: whose a bearer token is."""

from __future__ import annotations

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
