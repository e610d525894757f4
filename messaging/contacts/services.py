"""Writes of churches, staff members and contacts, and the phone-number rule they share."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import phonenumbers
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import prefetch_related_objects

from messaging.errors import Conflict, InvalidInput, Unprocessable
from messaging.models import Church, Contact, ContactGroup, StaffMember, validate_time_zone


def phone_normalize(*, phone: str, field: str = "phone") -> str:
    """E.164 form of a valid number (``+12025550123``); anything else is Unprocessable (the API's
    schema states the form; whether a number can exist is libphonenumber's to say)."""
    try:
        parsed = phonenumbers.parse(phone, settings.MESSAGING_DEFAULT_PHONE_REGION)
    except phonenumbers.NumberParseException as error:
        raise Unprocessable(f"'{phone}' is not a phone number: {error}", field=field) from None
    if not phonenumbers.is_valid_number(parsed):
        raise Unprocessable(f"'{phone}' is not a valid phone number", field=field)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def church_create(*, name: str, time_zone: str = "UTC") -> Church:
    try:
        validate_time_zone(time_zone)
    except Exception:
        raise InvalidInput(f"'{time_zone}' is not an IANA time zone name", field="time_zone") from None
    return Church.objects.create(name=name, time_zone=time_zone)


def staff_member_ensure(
    *, church_name: str, username: str, password: str, time_zone: str = "UTC"
) -> StaffMember:
    """The user ``username`` on the staff of the church named ``church_name``, created if missing.

    Safe to run again: the password is set to ``password`` each time.
    """
    user_model = get_user_model()
    with transaction.atomic():
        church = Church.objects.filter(name=church_name).order_by("id").first()
        if church is None:
            church = church_create(name=church_name, time_zone=time_zone)
        user, _ = user_model.objects.get_or_create(username=username)
        user.set_password(password)
        user.save()
        staff_member, _ = StaffMember.objects.get_or_create(user=user, defaults={"church": church})
        if staff_member.church_id != church.id:
            staff_member.church = church
            staff_member.save(update_fields=["church"])
    return staff_member


def contact_create(*, church: Church, phone: str, name: str = "", groups: Iterable[str] = ()) -> Contact:
    normalized = phone_normalize(phone=phone)
    group_names = sorted({group.strip() for group in groups if group.strip()})
    try:
        with transaction.atomic():
            contact = Contact.objects.create(church=church, phone=normalized, name=name)
            if group_names:
                contact.groups.set(_groups_ensure(church=church, names=group_names))
            # Loaded here, on the primary: a replica may not have the new rows yet.
            prefetch_related_objects([contact], "groups")
    except IntegrityError:
        raise Conflict(f"a contact with phone {normalized} already exists", field="phone") from None
    return contact


def _groups_ensure(*, church: Church, names: Sequence[str]) -> list[ContactGroup]:
    ContactGroup.objects.bulk_create(
        [ContactGroup(church=church, name=name) for name in names], ignore_conflicts=True
    )
    return list(ContactGroup.objects.filter(church=church, name__in=names))
