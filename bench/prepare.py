"""Seed the benchmark's data if it is not there yet, and write what the load generators need.

    .venv/bin/python -m bench.prepare --churches 100 --contacts 20000 --messages 100000 --out F

Runs inside Django (local settings: the running cluster). Seeds through ``seed_demo`` only the
part that is missing (the totals are kept across runs), makes sure the demo user exists, and
writes a JSON fixture: the demo user, its church's linked number, some of its contacts, the
webhook secret, API tokens for the simulated staff, and the totals.
"""

import argparse
import json
import os
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--churches", type=int, required=True)
    parser.add_argument("--contacts", type=int, required=True)
    parser.add_argument("--messages", type=int, required=True)
    parser.add_argument("--tokens", type=int, default=50, help="API tokens to mint for the load test")
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
    args.out.write_text(json.dumps(fixture, indent=2))
    sys.stdout.write(
        f"data: {fixture['churches']} churches, {fixture['messages']} messages "
        f"({fixture['church_messages']} in the demo church)\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
