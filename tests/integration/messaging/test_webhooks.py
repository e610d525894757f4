"""Provider callbacks: signed with HMAC-SHA256 over the raw body, idempotent on the provider id."""

import json

import pytest
from django.test import Client

from messaging.models import Contact, Message
from messaging.webhooks import webhook_signature
from tests.integration.messaging.factories import ContactFactory, MessageFactory, PhoneLinkFactory

pytestmark = pytest.mark.integration


def _signed_post(path: str, payload: dict[str, object], *, signature: str | None = "sign"):
    body = json.dumps(payload).encode()
    headers = {}
    if signature == "sign":
        headers["X-Signature"] = webhook_signature(body=body)
    elif signature is not None:
        headers["X-Signature"] = signature
    return Client().post(path, data=body, content_type="application/json", headers=headers)


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
    # given
    _signed_post("/webhooks/sms/inbound", _inbound())
    # when
    response = _signed_post("/webhooks/sms/inbound", _inbound())
    # then
    assert response.status_code == 200
    assert response.json()["duplicate"] is True
    assert Message.objects.filter(provider_message_id="SM100").count() == 1


@pytest.mark.parametrize(
    "signature", [None, "", "deadbeef", webhook_signature(body=b"another body"), "sha256=0000"]
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
    body = json.dumps(_inbound()).encode()
    response = Client().post(
        "/webhooks/sms/inbound",
        data=body,
        content_type="application/json",
        headers={"X-Signature": webhook_signature(body=body, secret="not-the-secret")},
    )
    assert response.status_code == 403
    assert not Message.objects.exists()


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
    response = Client().post(
        "/webhooks/sms/inbound",
        data=body,
        content_type="application/json",
        headers={"X-Signature": webhook_signature(body=body)},
    )
    assert response.status_code == 400
    assert response.json()["field"] == "body"


def test_a_status_report_moves_the_message_forward_only(church):
    # given
    message = MessageFactory.create(church=church, status=Message.Status.SENT, provider_message_id="SM200")
    # when
    delivered = _signed_post("/webhooks/sms/status", {"message_id": "SM200", "status": "delivered"})
    late_sent = _signed_post("/webhooks/sms/status", {"message_id": "SM200", "status": "sent"})
    again = _signed_post("/webhooks/sms/status", {"message_id": "SM200", "status": "delivered"})
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
