"""``/api/contacts``: the church's contacts."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Query, Router, Status

from messaging.api.auth import request_church
from messaging.api.schemas import ERRORS, ContactIn, ContactOut, ContactPage, Id, PageFilters, page
from messaging.contacts import selectors, services
from messaging.models import Contact

router = Router()


@router.get("/api/contacts", response={200: ContactPage, **ERRORS}, tags=["contacts"])
def contacts_list(request: HttpRequest, filters: Query[PageFilters]) -> dict[str, object]:
    """The church's contacts, by id; pass the last id as ``after`` for the next page."""
    items = selectors.contact_list(
        church=request_church(request), after=filters.after, limit=filters.limit + 1
    )
    return page(items, filters.limit)


@router.post("/api/contacts", response={201: ContactOut, **ERRORS}, tags=["contacts"])
def contacts_create(request: HttpRequest, payload: ContactIn) -> Status[Contact]:
    """Add a contact; the phone number is stored in E.164 form, once per church."""
    contact = services.contact_create(
        church=request_church(request), phone=payload.phone, name=payload.name, groups=payload.groups
    )
    return Status(201, contact)


@router.get("/api/contacts/{contact_id}", response={200: ContactOut, **ERRORS}, tags=["contacts"])
def contacts_get(request: HttpRequest, contact_id: Id) -> Contact:
    return selectors.contact_get(church=request_church(request), contact_id=contact_id)
