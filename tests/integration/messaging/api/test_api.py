"""The JSON API against the real database: auth, contacts, messages, recurring messages, errors."""

import json
from zoneinfo import ZoneInfo

import pytest
from django.test import Client

from messaging.models import ApiToken, Contact, Message, RecurringMessage
from messaging.tokens.selectors import api_token_hash
from tests.integration.messaging.factories import (
    ContactFactory,
    ContactGroupFactory,
    MessageFactory,
    StaffMemberFactory,
)

pytestmark = pytest.mark.integration


def _post(client: Client, path: str, payload: object, **headers: str):
    return client.post(path, data=json.dumps(payload), content_type="application/json", headers=headers)


def _patch(client: Client, path: str, payload: object):
    return client.patch(path, data=json.dumps(payload), content_type="application/json")


# --- auth -----------------------------------------------------------------------------------


def test_login_returns_a_bearer_token_whose_hash_alone_is_stored(church):
    # given
    staff = StaffMemberFactory.create(church=church)
    # when
    response = _post(
        Client(), "/auth/login", {"username": staff.user.username, "password": "a-staff-password"}
    )
    # then
    assert response.status_code == 200
    token = response.json()["token"]
    assert response.json()["church"]["id"] == church.id
    assert ApiToken.objects.filter(key_hash=api_token_hash(raw_token=token)).exists()
    assert not ApiToken.objects.filter(key_hash=token).exists()
    authed = Client(headers={"Authorization": f"Bearer {token}"})
    assert authed.get("/api/contacts").status_code == 200


def test_a_wrong_password_is_401_and_gives_no_token(church):
    # given
    staff = StaffMemberFactory.create(church=church)
    # when
    response = _post(Client(), "/auth/login", {"username": staff.user.username, "password": "wrong"})
    # then
    assert response.status_code == 401
    assert response.json()["field"] == "password"
    assert not ApiToken.objects.exists()


def test_logout_revokes_the_token(api):
    # when
    response = api.post("/auth/logout")
    # then
    assert response.status_code == 204
    assert api.get("/api/contacts").status_code == 401


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/contacts"),
        ("post", "/api/contacts"),
        ("get", "/api/messages"),
        ("post", "/api/messages"),
        ("get", "/api/recurring-messages"),
        ("post", "/api/recurring-messages"),
        ("patch", "/api/recurring-messages/1"),
        ("post", "/auth/logout"),
        ("post", "/auth/logout-all"),
    ],
)
def test_without_a_token_every_endpoint_is_401_naming_the_header(db, method, path):
    # when
    response = Client().generic(method.upper(), path, data="{}", content_type="application/json")
    # then
    assert response.status_code == 401
    assert response.json()["field"] == "Authorization"


def test_a_made_up_token_is_401(db):
    response = Client(headers={"Authorization": "Bearer not-a-token"}).get("/api/messages")
    assert response.status_code == 401


# --- contacts -------------------------------------------------------------------------------


def test_a_contact_is_created_with_its_number_normalised(api, church):
    # when
    response = _post(api, "/api/contacts", {"phone": "(202) 555-0123", "name": "Ruth", "groups": ["choir"]})
    # then
    assert response.status_code == 201
    body = response.json()
    assert body["phone"] == "+12025550123"
    assert body["groups"] == ["choir"]
    assert Contact.objects.get(church=church, id=body["id"]).phone == "+12025550123"


def test_a_phone_number_of_the_right_form_that_no_one_can_have_is_422_naming_the_field(api):
    # when
    response = _post(api, "/api/contacts", {"phone": "12345"})
    # then
    assert response.status_code == 422
    assert response.json()["field"] == "phone"
    assert not Contact.objects.exists()


@pytest.mark.parametrize("phone", ["", "call me", "+1 202 555 0123 x7", "\uff12\uff10\uff12"])
def test_a_phone_number_the_schema_refuses_is_400_naming_the_field(api, phone):
    response = _post(api, "/api/contacts", {"phone": phone})
    assert response.status_code == 400
    assert response.json()["field"] == "phone"
    assert not Contact.objects.exists()


def test_the_same_number_twice_in_one_church_is_409(api, church):
    # given
    ContactFactory.create(church=church, phone="+12025550123")
    # when
    response = _post(api, "/api/contacts", {"phone": "+1 202 555 0123"})
    # then
    assert response.status_code == 409
    assert response.json()["field"] == "phone"


def test_the_same_number_in_two_churches_is_two_contacts(api, other_church):
    # given
    ContactFactory.create(church=other_church, phone="+12025550123")
    # when
    response = _post(api, "/api/contacts", {"phone": "+12025550123"})
    # then
    assert response.status_code == 201


def test_contacts_are_listed_by_page(api, church):
    # given
    contacts = ContactFactory.create_batch(3, church=church)
    # when
    first = api.get("/api/contacts?limit=2").json()
    second = api.get(f"/api/contacts?limit=2&after={first['next_after']}").json()
    # then
    assert [item["id"] for item in first["items"] + second["items"]] == [c.id for c in contacts]
    assert second["next_after"] is None


# --- messages -------------------------------------------------------------------------------


def test_a_message_to_one_contact_is_queued(api, church):
    # given
    contact = ContactFactory.create(church=church)
    # when
    response = _post(api, "/api/messages", {"contact_id": contact.id, "body": "Hello"})
    # then
    assert response.status_code == 201
    [message] = response.json()["messages"]
    assert message["status"] == "queued"
    assert Message.objects.get(id=message["id"]).contact == contact


def test_a_message_to_a_list_of_contacts_makes_one_message_each(api, church):
    # given
    contacts = ContactFactory.create_batch(3, church=church)
    # when
    response = _post(api, "/api/messages", {"contact_ids": [c.id for c in contacts], "body": "Hello all"})
    # then
    assert response.status_code == 201
    assert sorted(m["contact_id"] for m in response.json()["messages"]) == [c.id for c in contacts]
    assert Message.objects.filter(church=church).count() == 3


def test_a_retried_post_with_the_same_idempotency_key_creates_nothing_new(api, church):
    # given
    contacts = ContactFactory.create_batch(2, church=church)
    payload = {"contact_ids": [c.id for c in contacts], "body": "Retry me"}
    first = _post(api, "/api/messages", payload, **{"Idempotency-Key": "req-1"})
    # when
    second = _post(api, "/api/messages", payload, **{"Idempotency-Key": "req-1"})
    # then
    assert first.status_code == second.status_code == 201
    assert [m["id"] for m in second.json()["messages"]] == [m["id"] for m in first.json()["messages"]]
    assert second.json()["replayed"] is True
    assert Message.objects.filter(church=church).count() == 2


def test_the_same_idempotency_key_with_another_body_is_409(api, church):
    # given
    contact = ContactFactory.create(church=church)
    _post(api, "/api/messages", {"contact_id": contact.id, "body": "one"}, **{"Idempotency-Key": "k"})
    # when
    response = _post(
        api, "/api/messages", {"contact_id": contact.id, "body": "two"}, **{"Idempotency-Key": "k"}
    )
    # then
    assert response.status_code == 409
    assert response.json()["field"] == "Idempotency-Key"
    assert Message.objects.count() == 1


def test_an_idempotency_key_is_per_church(api, other_api, church, other_church):
    # given
    mine, theirs = ContactFactory.create(church=church), ContactFactory.create(church=other_church)
    _post(api, "/api/messages", {"contact_id": mine.id, "body": "hi"}, **{"Idempotency-Key": "shared"})
    # when
    response = _post(
        other_api, "/api/messages", {"contact_id": theirs.id, "body": "hi"}, **{"Idempotency-Key": "shared"}
    )
    # then
    assert response.status_code == 201
    assert response.json()["replayed"] is False


def test_a_body_over_1600_characters_is_400_naming_the_body(api, church):
    # given
    contact = ContactFactory.create(church=church)
    # when
    response = _post(api, "/api/messages", {"contact_id": contact.id, "body": "x" * 1601})
    # then
    assert response.status_code == 400
    assert response.json()["field"] == "body"
    assert not Message.objects.exists()


def test_an_unknown_contact_is_404(api):
    response = _post(api, "/api/messages", {"contact_id": 987654321, "body": "hi"})
    assert response.status_code == 404
    assert response.json()["field"] == "contact_ids"


def test_an_opted_out_contact_is_refused_as_a_conflict_with_what_is_stored(api, church):
    contact = ContactFactory.create(church=church, opted_out=True)
    response = _post(api, "/api/messages", {"contact_id": contact.id, "body": "hi"})
    assert response.status_code == 409
    assert response.json()["field"] == "contact_ids"
    assert not Message.objects.exists()


def test_messages_are_listed_by_keyset_page_and_filtered(api, church):
    # given
    ruth, naomi = ContactFactory.create_batch(2, church=church)
    outbound = MessageFactory.create_batch(3, church=church, contact=ruth)
    inbound = MessageFactory.create(church=church, contact=ruth, direction=Message.Direction.INBOUND)
    MessageFactory.create(church=church, contact=naomi)
    # when
    page1 = api.get(f"/api/messages?contact={ruth.id}&limit=2").json()
    page2 = api.get(f"/api/messages?contact={ruth.id}&limit=2&after={page1['next_after']}").json()
    inbound_only = api.get("/api/messages?direction=inbound").json()
    # then
    ids = [m["id"] for m in page1["items"] + page2["items"]]
    assert ids == [m.id for m in [*outbound, inbound]]
    assert page2["next_after"] is None
    assert [m["id"] for m in inbound_only["items"]] == [inbound.id]


@pytest.mark.parametrize("query", ["limit=0", "limit=abc", "after=x", "direction=sideways", "limit=201"])
def test_a_bad_query_parameter_is_400_naming_it(api, query):
    response = api.get(f"/api/messages?{query}")
    assert response.status_code == 400
    assert response.json()["field"] == query.split("=")[0]


# --- recurring messages ---------------------------------------------------------------------


def test_a_recurring_message_is_scheduled_in_the_church_time_zone(api, church):
    # given
    group = ContactGroupFactory.create(church=church, name="youth")
    # when
    response = _post(
        api, "/api/recurring-messages", {"body": "Youth night!", "cron": "0 18 * * 5", "group": "youth"}
    )
    # then
    assert response.status_code == 201
    body = response.json()
    assert body["group"] == "youth"
    recurring = RecurringMessage.objects.get(id=body["id"])
    assert recurring.group == group
    assert recurring.next_run_at is not None
    local = recurring.next_run_at.astimezone(ZoneInfo(church.time_zone))
    assert (local.weekday(), local.hour, local.minute) == (4, 18, 0)


def test_an_invalid_cron_is_400_naming_it(api):
    response = _post(api, "/api/recurring-messages", {"body": "x", "cron": "every friday"})
    assert response.status_code == 400
    assert response.json()["field"] == "cron"


@pytest.mark.parametrize("cron", ["0 0 31 2 *", "99 * * * *"])
def test_a_cron_of_the_right_form_that_never_fires_or_cannot_be_read_is_422_naming_it(api, cron):
    response = _post(api, "/api/recurring-messages", {"body": "x", "cron": cron})
    assert response.status_code == 422
    assert response.json()["field"] == "cron"
    assert not RecurringMessage.objects.exists()


@pytest.mark.parametrize("active", [0, 1, "true", "false", None])
def test_active_is_a_json_boolean_and_nothing_else(api, church, active):
    # given
    created = _post(api, "/api/recurring-messages", {"body": "Sunday!", "cron": "0 9 * * 0"}).json()
    # when
    patched = _patch(api, f"/api/recurring-messages/{created['id']}", {"active": active})
    made = _post(api, "/api/recurring-messages", {"body": "x", "cron": "0 9 * * 0", "active": active})
    # then
    assert (patched.status_code, patched.json()["field"]) == (400, "active")
    assert (made.status_code, made.json()["field"]) == (400, "active")
    assert RecurringMessage.objects.get(id=created["id"]).active is True


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("/api/contacts", {"phone": "+12025550123", "name": 7}, "name"),
        ("/api/contacts", {"phone": "+12025550123", "groups": [" "]}, "groups"),
        ("/api/messages", {"contact_id": "1", "body": "hi"}, "contact_id"),
        ("/api/messages", {"body": "hi"}, "contact_ids"),
        ("/api/messages", {"contact_id": 1, "body": " \n\t"}, "body"),
        ("/api/recurring-messages", {"body": "x", "cron": ""}, "cron"),
        ("/api/recurring-messages", {"body": "", "cron": "0 9 * * 0"}, "body"),
    ],
)
def test_input_of_another_type_or_form_than_the_schema_states_is_400_naming_it(api, path, payload, field):
    response = _post(api, path, payload)
    assert response.status_code == 400
    assert response.json()["field"] == field


def test_an_id_written_as_an_integral_number_is_an_id(api, church):
    # JSON has one number type: 7.0 is the integer 7 (to JSON Schema too); "7" is a string
    contact = ContactFactory.create(church=church)
    response = _post(api, "/api/messages", {"contact_id": float(contact.id), "body": "hi"})
    assert response.status_code == 201, response.content
    assert _post(api, "/api/messages", {"contact_id": contact.id + 0.5, "body": "hi"}).status_code == 400
    assert _post(api, "/api/messages", {"contact_id": True, "body": "hi"}).status_code == 400


def test_an_unknown_query_parameter_is_400(api):
    response = api.get("/api/messages?limt=5")
    assert response.status_code == 400
    assert response.json()["field"] == "limt"


def test_a_recurring_message_is_paused_and_resumed(api, church):
    # given
    created = _post(api, "/api/recurring-messages", {"body": "Sunday!", "cron": "0 9 * * 0"}).json()
    # when
    paused = _patch(api, f"/api/recurring-messages/{created['id']}", {"active": False}).json()
    resumed = _patch(api, f"/api/recurring-messages/{created['id']}", {"active": True}).json()
    # then
    assert (paused["active"], paused["next_run_at"]) == (False, None)
    assert resumed["active"] is True
    assert resumed["next_run_at"] is not None
    assert api.get("/api/recurring-messages").json()["items"][0]["id"] == created["id"]


# --- tenancy --------------------------------------------------------------------------------


def test_another_churchs_objects_are_404_on_every_endpoint(api, other_church):
    # given: objects of another church
    contact = ContactFactory.create(church=other_church)
    message = MessageFactory.create(church=other_church, contact=contact)
    group = ContactGroupFactory.create(church=other_church, name="theirs")
    recurring = RecurringMessage.objects.create(church=other_church, body="x", cron="0 9 * * *", group=group)
    # when / then
    attempts = {
        "contact": api.get(f"/api/contacts/{contact.id}"),
        "message": api.get(f"/api/messages/{message.id}"),
        "messages of contact": api.get(f"/api/messages?contact={contact.id}"),
        "send to contact": _post(api, "/api/messages", {"contact_id": contact.id, "body": "hi"}),
        "send to list": _post(api, "/api/messages", {"contact_ids": [contact.id], "body": "hi"}),
        "recurring to group": _post(
            api, "/api/recurring-messages", {"body": "x", "cron": "0 9 * * *", "group": "theirs"}
        ),
        "pause recurring": _patch(api, f"/api/recurring-messages/{recurring.id}", {"active": False}),
    }
    assert {name: response.status_code for name, response in attempts.items()} == dict.fromkeys(attempts, 404)
    # and the lists show none of it
    assert api.get("/api/contacts").json()["items"] == []
    assert api.get("/api/messages").json()["items"] == []
    assert api.get("/api/recurring-messages").json()["items"] == []
    recurring.refresh_from_db()
    assert recurring.active is True
    assert Message.objects.count() == 1


# --- malformed and oversized requests -------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/contacts", "/api/messages", "/api/recurring-messages", "/auth/login"])
def test_malformed_json_is_400_naming_the_body(api, path):
    response = api.post(path, data='{"phone": ', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["field"] == "body"


def test_a_missing_field_is_400_naming_it(api):
    response = _post(api, "/api/contacts", {"name": "no phone"})
    assert response.status_code == 400
    assert response.json()["field"] == "phone"


def test_a_request_over_the_upload_limit_is_a_json_413(api, settings):
    # given
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    # when
    response = _post(api, "/api/contacts", {"phone": "+12025550123", "name": "x" * 2000})
    # then
    assert response.status_code == 413
    assert response.json()["field"] == "body"
    assert not Contact.objects.exists()


def test_the_openapi_schema_describes_every_endpoint(db):
    # when
    schema = Client().get("/api/openapi.json").json()
    # then
    assert set(schema["paths"]) == {
        "/auth/login",
        "/auth/logout",
        "/auth/logout-all",
        "/api/contacts",
        "/api/contacts/{contact_id}",
        "/api/messages",
        "/api/messages/{message_id}",
        "/api/recurring-messages",
        "/api/recurring-messages/{recurring_message_id}",
        "/webhooks/sms/inbound",
        "/webhooks/sms/status",
    }
    assert set(schema["paths"]["/api/messages"]) == {"get", "post"}
    assert "patch" in schema["paths"]["/api/recurring-messages/{recurring_message_id}"]


# --- no 500 for any client input ------------------------------------------------------------

HUGE = 2**70
STRANGE_REQUESTS = [
    ("post", "/api/contacts", {"phone": "+12025550123", "name": "nul\x00byte"}, "name"),
    ("post", "/api/contacts", {"phone": "+12025550123", "groups": ["g" * 101]}, "groups"),
    ("post", "/api/contacts", {"phone": 12025550123}, "phone"),
    ("post", "/api/contacts", ["not", "an", "object"], "phone"),
    ("post", "/api/messages", {"contact_id": HUGE, "body": "hi"}, "contact_id"),
    ("post", "/api/messages", {"contact_ids": [1, -5], "body": "hi"}, "contact_ids"),
    ("post", "/api/messages", {"contact_ids": [], "body": "hi"}, "contact_ids"),
    ("post", "/api/messages", {"contact_id": 1, "body": ""}, "body"),
    ("post", "/api/recurring-messages", {"body": "x", "cron": "0 0 31 2 *"}, "cron"),
    ("post", "/api/recurring-messages", {"body": "x", "cron": "0 0 * * * *"}, "cron"),
    ("post", "/auth/login", {"username": "a\x00b", "password": "x"}, "username"),
    ("get", f"/api/messages?after={HUGE}", None, "after"),
    ("get", f"/api/messages?contact={HUGE}", None, "contact"),
    ("get", f"/api/contacts/{HUGE}", None, "contact_id"),
    ("patch", f"/api/recurring-messages/{HUGE}", {"active": False}, "recurring_message_id"),
    ("patch", "/api/recurring-messages/1", {"active": "sometimes"}, "active"),
]


@pytest.mark.parametrize(("method", "path", "payload", "field"), STRANGE_REQUESTS)
def test_strange_input_is_a_4xx_naming_the_field_never_a_500(api, method, path, payload, field):
    # when
    response = api.generic(
        method.upper(),
        path,
        data=json.dumps(payload) if payload is not None else "",
        content_type="application/json",
    )
    # then
    assert 400 <= response.status_code < 500, response.content
    assert response.json()["field"] == field


def test_a_body_that_is_not_utf8_is_400(api):
    response = api.post("/api/contacts", data=b'{"phone": "\xff\xfe"}', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["field"] == "body"


def test_an_overlong_idempotency_key_is_400_naming_the_header(api, church):
    contact = ContactFactory.create(church=church)
    payload = {"contact_id": contact.id, "body": "hi"}
    response = _post(api, "/api/messages", payload, **{"Idempotency-Key": "k" * 201})
    assert response.status_code == 400
    assert response.json()["field"] == "Idempotency-Key"
    assert not Message.objects.exists()
