"""Provider callbacks are verified over their timestamp and exact body, under either secret of a rotation."""

import pytest

from messaging.inbound.webhooks import webhook_signature, webhook_verify

pytestmark = pytest.mark.unit


def _verify(body, signature, timestamp="1700000000", now=1700000000.0, secrets=("s3cret",)):
    return webhook_verify(
        body=body, signature=signature, timestamp=timestamp, secrets=secrets, now=now, max_skew=300
    )


def test_a_signature_over_timestamp_and_exact_body_is_accepted_and_any_change_refused():
    # given
    body = b'{"message_id": "SM1"}'
    signature = webhook_signature(body=body, timestamp=1700000000, secret="s3cret")
    # then
    assert _verify(body, signature).ok
    assert _verify(body, f"sha256={signature}").ok
    assert not _verify(body + b" ", signature).ok
    assert not _verify(body, signature, timestamp="1700000001").ok  # the timestamp is signed too
    assert not _verify(body, signature, secrets=("other",)).ok
    assert not _verify(body, None).ok
    assert not _verify(body, "").ok
    assert not _verify(body, signature, secrets=("",)).ok  # an empty secret never verifies


def test_the_timestamp_may_be_at_most_the_skew_away_either_way():
    body = b"{}"
    signature = webhook_signature(body=body, timestamp=1700000000, secret="s3cret")
    assert _verify(body, signature, now=1700000300.0).ok
    assert _verify(body, signature, now=1699999700.0).ok
    stale = _verify(body, signature, now=1700000301.0)
    assert (stale.ok, stale.field) == (False, "X-Signature-Timestamp")
    assert not _verify(body, signature, now=1699999699.0).ok


def test_either_of_two_secrets_verifies_during_a_rotation():
    body = b"{}"
    old = webhook_signature(body=body, timestamp=1700000000, secret="old")
    new = webhook_signature(body=body, timestamp=1700000000, secret="new")
    assert _verify(body, old, secrets=("new", "old")).ok
    assert _verify(body, new, secrets=("new", "old")).ok
    assert not _verify(body, old, secrets=("new",)).ok


@pytest.mark.parametrize(
    "timestamp",
    [
        "\xb2",  # superscript two: str.isdigit() says yes, int() raises
        "17000000\xb9\xb2",
        "\uff11\uff17\uff10\uff10\uff10\uff10\uff10\uff10\uff10\uff10",  # full-width digits int() reads
        "\u0661\u0667\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660",  # Arabic-Indic digits
        "+1700000000",
        "1_700_000_000",
        "1700000000.0",
    ],
)
def test_a_timestamp_of_anything_but_ascii_digits_is_refused_naming_the_header(timestamp):
    # given a body signed over that very timestamp string
    body = b"{}"
    signature = webhook_signature(body=body, timestamp=timestamp, secret="s3cret")
    # when
    verdict = _verify(body, signature, timestamp=timestamp)
    # then
    assert (verdict.ok, verdict.field) == (False, "X-Signature-Timestamp")
    assert "X-Signature-Timestamp" in verdict.reason
