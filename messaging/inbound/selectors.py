"""Reads of phone links: the ones the phone-linking-recovery job tries again."""

from __future__ import annotations

from datetime import datetime

from config.databases import PRIMARY_DB_ALIAS
from messaging.models import PhoneLink


def phone_links_stuck(*, stuck_before: datetime, limit: int) -> list[PhoneLink]:
    """Pending links created before ``stuck_before``, least recently tried first (on the primary)."""
    return list(
        PhoneLink.objects.using(PRIMARY_DB_ALIAS)
        .filter(state=PhoneLink.State.PENDING, created_at__lte=stuck_before)
        .order_by("last_attempt_at", "id")[:limit]
    )
