"""Phone numbers are stored in E.164 form; anything else is refused naming the field."""

import pytest

from messaging.contacts.services import phone_normalize
from messaging.errors import InvalidInput

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
