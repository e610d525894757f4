"""Inputs the services refuse before touching the database: phones, bodies, signatures."""

import pytest

from messaging.errors import InvalidInput
from messaging.models import validate_cron
from messaging.services import phone_normalize
from messaging.webhooks import webhook_signature, webhook_signature_valid

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+1 (202) 555-0123", "+12025550123"),
        ("202-555-0123", "+12025550123"),
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_a_phone_number_is_stored_in_e164(raw, expected):
    assert phone_normalize(phone=raw) == expected


@pytest.mark.parametrize("raw", ["hello", "+1 555", "+999 123456789", ""])
def test_an_invalid_phone_number_names_the_field(raw):
    with pytest.raises(InvalidInput) as caught:
        phone_normalize(phone=raw)
    assert caught.value.field == "phone"


def test_a_cron_expression_is_validated():
    validate_cron("0 9 * * 0")
    with pytest.raises(Exception, match="not a valid cron"):
        validate_cron("every sunday")


def test_a_signature_over_the_exact_body_is_accepted_and_any_change_refused():
    # given
    body = b'{"message_id": "SM1"}'
    signature = webhook_signature(body=body, secret="s3cret")
    # then
    assert webhook_signature_valid(body=body, signature=signature, secret="s3cret")
    assert webhook_signature_valid(body=body, signature=f"sha256={signature}", secret="s3cret")
    assert not webhook_signature_valid(body=body + b" ", signature=signature, secret="s3cret")
    assert not webhook_signature_valid(body=body, signature=signature, secret="other")
    assert not webhook_signature_valid(body=body, signature=None, secret="s3cret")
    assert not webhook_signature_valid(body=body, signature="", secret="s3cret")
