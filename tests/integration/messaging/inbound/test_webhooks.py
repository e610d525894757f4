"""Provider callbacks: HMAC-SHA256 over timestamp and raw body, no replays, idempotent on the provider id."""

import json
import time
import uuid

import pytest
from django.test import Client

from messaging.inbound.webhooks import webhook_headers, webhook_signature
from messaging.models import Contact, Message
from tests.integration.messaging.factories import ContactFactory, MessageFactory, PhoneLinkFactory

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _own_cache_keys(settings):
    """Seen signatures live in the cache: each test gets keys of its own, so same-second
    signatures of the same body in two tests are not each other's replays."""
    settings.CACHES = {
        **settings.CACHES,
        "default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-webhooks-{uuid.uuid4().hex}"},
    }


def _post(path: str, body: bytes, headers: dict[str, str]):
    return Client().post(path, data=body, content_type="application/json", headers=headers)


def _signed_post(path: str, payload: dict[str, object], *, signature: str | None = "sign", **sign):
    body = json.dumps(payload).encode()
    headers = webhook_headers(body=body, **sign)
    if signature is None:
        del headers["X-Signature"]
    elif signature != "sign":
        headers["X-Signature"] = signature
    return _post(path, body, headers)


@pytest.fixture
def linked_number(church):
    return PhoneLinkFactory.create(church=church, phone="+16465550100")


def _inbound(message_id: str = "SM100", body: str = "Amen") -> dict[str, object]:
    return {"message_id": message_id, "from": "+12025550123", "to": "+16465550100", "body": body}


def test_a_signed_inbound_message_is_stored_for_the_linked_church(church, linked_number):
    # when
    response = _signed_post("/webhooks/sms/inbound", _inbound())
    # then
    assert response.status_code == 200
    assert response.json()["duplicate"] is False
    message = Message.objects.get(provider_message_id="SM100")
    assert (message.church, message.direction, message.body) == (church, "inbound", "Amen")
    assert message.contact.phone == "+12025550123"


def test_the_same_inbound_message_twice_is_stored_once(linked_number):
    # given: the provider retries, signing again a second later
    _signed_post("/webhooks/sms/inbound", _inbound(), timestamp=int(time.time()) - 1)
    # when
    response = _signed_post("/webhooks/sms/inbound", _inbound())
    # then
    assert response.status_code == 200
    assert response.json()["duplicate"] is True
    assert Message.objects.filter(provider_message_id="SM100").count() == 1


@pytest.mark.parametrize(
    "signature",
    [None, "", "deadbeef", "sha256=" + webhook_signature(body=b"another body", timestamp=0), "sha256=0000"],
)
def test_a_missing_or_wrong_signature_is_403_and_writes_nothing(linked_number, signature):
    # when
    response = _signed_post("/webhooks/sms/inbound", _inbound(), signature=signature)
    # then
    assert response.status_code == 403
    assert response.json()["field"] == "X-Signature"
    assert not Message.objects.exists()
    assert not Contact.objects.exists()


def test_a_signature_made_with_another_secret_is_refused(linked_number):
    response = _signed_post("/webhooks/sms/inbound", _inbound(), secret="not-the-secret")
    assert response.status_code == 403
    assert not Message.objects.exists()


def test_a_replayed_callback_is_403_and_changes_nothing(church, linked_number):
    # given: a callback the provider sent, captured on the way
    body = json.dumps(_inbound(body="STOP")).encode()
    headers = webhook_headers(body=body)
    assert _post("/webhooks/sms/inbound", body, headers).status_code == 200
    contact = Contact.objects.get(phone="+12025550123")
    contact.opted_out = False  # the contact opted back in since
    contact.save(update_fields=["opted_out"])
    # when: the same bytes are sent again inside the time window
    response = _post("/webhooks/sms/inbound", body, headers)
    # then
    assert response.status_code == 403
    assert response.json() == {
        "detail": "this signed callback was already received (a replay)",
        "field": "X-Signature",
    }
    contact.refresh_from_db()
    assert contact.opted_out is False


@pytest.mark.parametrize("age", [310, -310, 3600])  # a margin: the clock moves while it runs
def test_a_callback_signed_more_than_five_minutes_away_is_403(church, linked_number, age):
    # when: correctly signed, but at a time too far from ours (a stale capture, or a clock off)
    response = _signed_post("/webhooks/sms/inbound", _inbound(), timestamp=int(time.time()) - age)
    # then
    assert response.status_code == 403
    assert response.json()["field"] == "X-Signature-Timestamp"
    assert not Message.objects.exists()


def test_a_callback_signed_four_minutes_ago_is_accepted(church, linked_number):
    response = _signed_post("/webhooks/sms/inbound", _inbound(), timestamp=int(time.time()) - 240)
    assert response.status_code == 200


# "\xb2" (superscript two) is a digit to str.isdigit() but not to int(): it once gave a 500.
@pytest.mark.parametrize("timestamp", [None, "", "yesterday", "-5", "1" * 20, "\xb2", "17000000\xb9\xb2"])
def test_a_missing_or_malformed_timestamp_is_403(linked_number, timestamp):
    body = json.dumps(_inbound()).encode()
    headers = webhook_headers(body=body)
    if timestamp is None:
        del headers["X-Signature-Timestamp"]
    else:
        headers["X-Signature-Timestamp"] = timestamp
    response = _post("/webhooks/sms/inbound", body, headers)
    assert response.status_code == 403
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["field"] == "X-Signature-Timestamp"
    assert "X-Signature-Timestamp" in response.json()["detail"]
    assert not Message.objects.exists()


def test_during_a_rotation_both_secrets_are_accepted_and_no_third(settings, church, linked_number):
    # given
    settings.MESSAGING_WEBHOOK_SECRET = "the-new-secret"
    settings.MESSAGING_WEBHOOK_SECRET_PREVIOUS = "the-old-secret"
    # when
    new = _signed_post("/webhooks/sms/inbound", _inbound("SM1"), secret="the-new-secret")
    old = _signed_post("/webhooks/sms/inbound", _inbound("SM2"), secret="the-old-secret")
    other = _signed_post("/webhooks/sms/inbound", _inbound("SM3"), secret="local-webhook-secret")
    # then
    assert (new.status_code, old.status_code, other.status_code) == (200, 200, 403)
    # and once the rotation is over, the old secret is refused
    settings.MESSAGING_WEBHOOK_SECRET_PREVIOUS = ""
    assert _signed_post("/webhooks/sms/inbound", _inbound("SM4"), secret="the-old-secret").status_code == 403


def test_stop_opts_the_contact_out(church, linked_number):
    # given
    contact = ContactFactory.create(church=church, phone="+12025550123")
    # when
    _signed_post("/webhooks/sms/inbound", _inbound(body=" stop "))
    # then
    contact.refresh_from_db()
    assert contact.opted_out is True


def test_an_inbound_message_to_an_unlinked_number_is_404(db):
    response = _signed_post("/webhooks/sms/inbound", _inbound())
    assert response.status_code == 404
    assert response.json()["field"] == "to"
    assert not Message.objects.exists()


def test_a_signed_but_malformed_body_is_400(db):
    body = b'{"message_id": '
    response = _post("/webhooks/sms/inbound", body, webhook_headers(body=body))
    assert response.status_code == 400
    assert response.json()["field"] == "body"


def _report(status: str) -> dict[str, object]:
    return {"message_id": "SM200", "status": status}


def test_a_status_report_moves_the_message_forward_only(church):
    # given
    message = MessageFactory.create(church=church, status=Message.Status.SENT, provider_message_id="SM200")
    # when
    now = int(time.time())
    delivered = _signed_post(
        "/webhooks/sms/status", {"message_id": "SM200", "status": "delivered"}, timestamp=now - 2
    )
    late_sent = _signed_post(
        "/webhooks/sms/status", {"message_id": "SM200", "status": "sent"}, timestamp=now - 1
    )
    again = _signed_post(
        "/webhooks/sms/status", {"message_id": "SM200", "status": "delivered"}, timestamp=now
    )
    # then
    assert delivered.status_code == late_sent.status_code == again.status_code == 200
    assert (delivered.json()["duplicate"], late_sent.json()["duplicate"], again.json()["duplicate"]) == (
        False,
        True,
        True,
    )
    message.refresh_from_db()
    assert message.status == Message.Status.DELIVERED


def test_an_undelivered_report_fails_the_message_with_the_error(church):
    message = MessageFactory.create(church=church, status=Message.Status.SENT, provider_message_id="SM300")
    _signed_post("/webhooks/sms/status", {"message_id": "SM300", "status": "undelivered", "error": "30003"})
    message.refresh_from_db()
    assert (message.status, message.error) == (Message.Status.FAILED, "30003")


def test_a_status_report_with_a_bad_signature_changes_nothing(church):
    message = MessageFactory.create(church=church, status=Message.Status.SENT, provider_message_id="SM400")
    response = _signed_post(
        "/webhooks/sms/status", {"message_id": "SM400", "status": "delivered"}, signature="x"
    )
    assert response.status_code == 403
    message.refresh_from_db()
    assert message.status == Message.Status.SENT


def test_a_status_report_for_an_unknown_message_is_404(db):
    response = _signed_post("/webhooks/sms/status", {"message_id": "SM-nope", "status": "delivered"})
    assert response.status_code == 404
