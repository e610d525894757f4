"""When a bearer token ends: a new password, a deactivation or a move to another church ends
every token of the user; ``POST /auth/logout-all`` ends them on request; the lifetime is a
setting. Each through the API, with the token already in the process's cache; the revocation
is published when the change commits (``django_capture_on_commit_callbacks`` runs it here, where
the test's transaction never commits)."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client
from django.utils import timezone

from messaging.models import ApiToken
from messaging.tokens import services
from messaging.tokens.selectors import api_token_hash
from tests.integration.messaging.factories import ChurchFactory, StaffMemberFactory

pytestmark = pytest.mark.integration


def _client(user: User) -> Client:
    return Client(headers={"Authorization": f"Bearer {services.api_token_create(user=user)}"})


def _works(client: Client) -> bool:
    status = client.get("/api/contacts").status_code
    assert status in (200, 401)
    return status == 200


@pytest.fixture
def staff(church):
    return StaffMemberFactory.create(church=church)


@pytest.fixture
def clients(staff):
    """Two tokens of the staff member, both checked once (so cached) and working."""
    made = [_client(staff.user), _client(staff.user)]
    assert [_works(client) for client in made] == [True, True]
    return made


def test_a_new_password_ends_every_token_of_the_user(staff, clients, django_capture_on_commit_callbacks):
    # given a colleague's token
    colleague = _client(StaffMemberFactory.create(church=staff.church).user)
    # when the password changes
    user = User.objects.get(pk=staff.user.pk)
    with django_capture_on_commit_callbacks(execute=True):
        user.set_password("a-new-password")
        user.save()
    # then the user's tokens are refused, and gone; the colleague's still works
    assert [_works(client) for client in clients] == [False, False]
    assert not ApiToken.objects.filter(user=user).exists()
    assert _works(colleague)


def test_a_saved_password_that_did_not_change_keeps_the_tokens(
    staff, clients, django_capture_on_commit_callbacks
):
    user = User.objects.get(pk=staff.user.pk)
    with django_capture_on_commit_callbacks(execute=True) as published:
        user.first_name = "Ruth"
        user.save()
    assert published  # the save was published: the tokens were looked up again
    assert [_works(client) for client in clients] == [True, True]


def test_deactivation_ends_the_tokens_for_good(staff, clients, django_capture_on_commit_callbacks):
    # when the user is deactivated, then activated again
    user = User.objects.get(pk=staff.user.pk)
    with django_capture_on_commit_callbacks(execute=True):
        user.is_active = False
        user.save(update_fields=["is_active"])
    refused_while_inactive = [_works(client) for client in clients]
    with django_capture_on_commit_callbacks(execute=True):
        user.is_active = True
        user.save()
    # then the old tokens stay dead; a new login is needed
    assert refused_while_inactive == [False, False]
    assert [_works(client) for client in clients] == [False, False]
    assert _works(_client(user))


def test_a_move_to_another_church_ends_the_tokens(staff, clients, django_capture_on_commit_callbacks):
    # when the staff member is moved to another church
    moved_to = ChurchFactory.create(name="The church moved to")
    with django_capture_on_commit_callbacks(execute=True):
        staff.church = moved_to
        staff.save(update_fields=["church"])
    # then no token of the user serves either church until the user logs in again
    assert [_works(client) for client in clients] == [False, False]
    fresh = _client(staff.user)
    assert _works(fresh)


def test_tokens_end_with_the_transaction_that_changed_the_password(
    staff, clients, django_capture_on_commit_callbacks
):
    # when the password changes inside a transaction that is rolled back
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        user = User.objects.get(pk=staff.user.pk)
        user.set_password("a-new-password")
        user.save()
        raise RuntimeError("rolled back")
    # then nothing changed: the tokens still work
    assert [_works(client) for client in clients] == [True, True]


def test_logout_all_ends_every_token_of_the_caller_and_no_one_elses(
    staff, clients, django_capture_on_commit_callbacks
):
    # given a colleague's token
    colleague = _client(StaffMemberFactory.create(church=staff.church).user)
    # when one of the user's tokens logs out everywhere
    with django_capture_on_commit_callbacks(execute=True):
        response = clients[0].post("/auth/logout-all")
    # then both of the user's tokens are refused, the colleague's works
    assert response.status_code == 204
    assert [_works(client) for client in clients] == [False, False]
    assert _works(colleague)


def test_logout_all_needs_a_live_token(db):
    response = Client(headers={"Authorization": "Bearer not-a-token"}).post("/auth/logout-all")
    assert response.status_code == 401
    assert response.json()["field"] == "Authorization"


def test_the_token_lifetime_is_a_setting(staff, settings):
    # given a lifetime of one hour
    settings.MESSAGING_API_TOKEN_TTL_HOURS = 1
    # when a token is made
    raw = services.api_token_create(user=staff.user)
    # then it expires an hour from now
    expires_at = ApiToken.objects.get(key_hash=api_token_hash(raw_token=raw)).expires_at
    assert abs(expires_at - (timezone.now() + timedelta(hours=1))) < timedelta(seconds=30)
