"""Reads of a church's contacts. Another church's contact is simply not found."""

from __future__ import annotations

from messaging.errors import NotFound
from messaging.models import Church, Contact


def contact_list(*, church: Church, after: int | None = None, limit: int = 50) -> list[Contact]:
    queryset = Contact.objects.filter(church=church).prefetch_related("groups").order_by("id")
    if after is not None:
        queryset = queryset.filter(id__gt=after)
    return list(queryset[:limit])


def contact_get(*, church: Church, contact_id: int) -> Contact:
    contact = Contact.objects.filter(church=church, id=contact_id).prefetch_related("groups").first()
    if contact is None:
        raise NotFound(f"contact {contact_id} not found", field="contact_id")
    return contact
