"""Every messaging admin page renders, with rows in it."""

import pytest
from django.urls import reverse

from messaging.models import ApiToken, DevelopmentSms, IdempotentRequest
from messaging.tokens import selectors, services
from tests.integration.messaging.factories import (
    ContactFactory,
    ContactGroupFactory,
    MessageFactory,
    PhoneLinkFactory,
    RecurringMessageFactory,
    StaffMemberFactory,
)

pytestmark = pytest.mark.integration

MODELS = [
    "church", "staffmember", "apitoken", "contactgroup", "contact", "message",
    "recurringmessage", "idempotentrequest", "phonelink", "developmentsms",
]  # fmt: skip


@pytest.fixture
def rows(church):
    staff = StaffMemberFactory.create(church=church)
    services.api_token_create(user=staff.user)
    contact = ContactFactory.create(church=church)
    contact.groups.add(ContactGroupFactory.create(church=church))
    message = MessageFactory.create(church=church, contact=contact)
    RecurringMessageFactory.create(church=church)
    PhoneLinkFactory.create(church=church)
    IdempotentRequest.objects.create(
        church=church, key="k", request_fingerprint="f", message_ids=[message.id]
    )
    DevelopmentSms.objects.create(
        to=contact.phone, from_number="+15005550006", body="hi", provider_message_id="DEV1"
    )


@pytest.mark.parametrize("model", MODELS)
def test_the_admin_list_and_change_pages_render(admin_client, rows, model):
    # when
    listing = admin_client.get(reverse(f"admin:messaging_{model}_changelist"))
    # then
    assert listing.status_code == 200
    assert listing.context["cl"].result_count >= 1
    first = listing.context["cl"].result_list[0]
    assert admin_client.get(reverse(f"admin:messaging_{model}_change", args=[first.pk])).status_code == 200


def test_expired_tokens_are_purged(church):
    # given
    staff = StaffMemberFactory.create(church=church)
    services.api_token_create(user=staff.user)
    ApiToken.objects.update(expires_at="2000-01-01T00:00:00Z")
    live = services.api_token_create(user=staff.user)
    # when
    purged = services.api_tokens_purge_expired()
    # then
    assert purged == 1
    assert ApiToken.objects.count() == 1
    assert selectors.staff_member_for_token(raw_token=live) == staff
