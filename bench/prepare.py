"""Seed the benchmark's data if it is not there yet, and write what the load generators need.

    .venv/bin/python -m bench.prepare --churches 100 --contacts 20000 --messages 100000 --out F

Runs inside Django (local settings: the running cluster). Seeds through ``seed_demo`` only the
part that is missing (the totals are kept across runs), makes sure the demo user exists, and
writes a JSON fixture: the demo user, its church's linked number, some of its contacts, the
webhook secret, API tokens for the simulated staff, and the totals; with ``--mix-churches N``,
also N churches' staff for the realistic mix (:func:`mix_identities`).
"""

import argparse
import json
import os
import random
import sys
from pathlib import Path


def mix_identities(count: int) -> list[dict[str, object]]:
    """For the realistic mix: ``count`` churches with messages, picked at random, each with a
    staff member's token, some of its contacts and messages, its linked number, and outbound
    messages with a provider id for delivery reports (given one here if they had none)."""
    from django.contrib.auth import get_user_model
    from django.db.models import Q

    from messaging.models import Church, Contact, Message, PhoneLink, StaffMember
    from messaging.tokens.services import api_token_create

    if count <= 0:
        return []
    with_messages = Church.objects.filter(Q(messages__isnull=False)).distinct().values_list("id", flat=True)
    chosen = random.Random(21).sample(sorted(with_messages), min(count, len(with_messages)))
    identities = []
    for church_id in chosen:
        user, _ = get_user_model().objects.get_or_create(username=f"bench-mix-{church_id}")
        StaffMember.objects.get_or_create(user=user, defaults={"church_id": church_id})
        contacts = list(
            Contact.objects.filter(church_id=church_id, opted_out=False)
            .order_by("id")
            .values_list("id", "phone")[:20]
        )
        messages = Message.objects.filter(church_id=church_id)
        ids = list(
            messages.order_by("id").values_list("id", flat=True)[:: max(messages.count() // 10, 1)][:10]
        )
        outbound = list(messages.filter(direction=Message.Direction.OUTBOUND).order_by("-id")[:10])
        for message in outbound:
            if not message.provider_message_id:
                message.provider_message_id = f"BENCHMIX{message.id}"
                message.save(update_fields=["provider_message_id"])
        link = PhoneLink.objects.filter(church_id=church_id, state=PhoneLink.State.LINKED).first()
        if not contacts or link is None:
            continue
        identities.append(
            {
                "church_id": church_id,
                "token": api_token_create(user=user),
                "contact_ids": [contact_id for contact_id, _ in contacts],
                "contact_phones": [phone for _, phone in contacts],
                "message_ids": ids,
                "provider_message_ids": [message.provider_message_id for message in outbound],
                "linked_phone": link.phone,
            }
        )
    return identities


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--churches", type=int, required=True)
    parser.add_argument("--contacts", type=int, required=True)
    parser.add_argument("--messages", type=int, required=True)
    parser.add_argument("--tokens", type=int, default=50, help="API tokens to mint for the load test")
    parser.add_argument(
        "--mix-churches", type=int, default=0, help="churches whose staff the realistic mix signs in as"
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from messaging.models import Church, Contact, Message, PhoneLink, StaffMember
    from messaging.tokens.services import api_token_create

    churches, messages = Church.objects.count(), Message.objects.count()
    missing_churches = max(args.churches - churches, 0)
    missing_messages = max(args.messages - messages, 0)
    if missing_churches or missing_messages:
        call_command(
            "seed_demo",
            churches=max(missing_churches, 1),
            contacts=max(args.contacts * missing_messages // max(args.messages, 1), 10),
            messages=missing_messages,
        )
    staff = StaffMember.objects.select_related("church", "user").get(
        user__username=settings.MESSAGING_DEMO_USERNAME
    )
    link = PhoneLink.objects.filter(church=staff.church, state=PhoneLink.State.LINKED).first()
    if link is None:  # a demo church made by ensure_demo_user has no number yet
        link = PhoneLink.objects.create(
            church=staff.church, phone="+16469999999", state=PhoneLink.State.LINKED, attempts=1
        )
    contacts = list(
        Contact.objects.filter(church=staff.church, opted_out=False)
        .order_by("id")
        .values_list("id", "phone")[:200]
    )
    if not contacts:
        contacts = [
            (
                Contact.objects.create(church=staff.church, phone="+12125550100", name="Bench").id,
                "+12125550100",
            )
        ]
    fixture = {
        "username": settings.MESSAGING_DEMO_USERNAME,
        "password": settings.MESSAGING_DEMO_PASSWORD,
        "church_id": staff.church.id,
        "linked_phone": link.phone,
        "contact_ids": [contact_id for contact_id, _ in contacts],
        "contact_phones": [phone for _, phone in contacts],
        "webhook_secret": settings.MESSAGING_WEBHOOK_SECRET,
        # Signed-in sessions for the simulated staff: a login is a deliberately slow password hash
        # (PBKDF2), so the load test logs in at a realistic rate instead of once per user.
        "tokens": [api_token_create(user=staff.user) for _ in range(args.tokens)],
        "churches": Church.objects.count(),
        "messages": Message.objects.count(),
        "church_messages": Message.objects.filter(church=staff.church).count(),
    }
    fixture["mix"] = mix_identities(args.mix_churches)
    args.out.write_text(json.dumps(fixture, indent=2))
    sys.stdout.write(
        f"data: {fixture['churches']} churches, {fixture['messages']} messages "
        f"({fixture['church_messages']} in the demo church)\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
