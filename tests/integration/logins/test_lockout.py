"""Per-account lockout with backoff, on the real cache (Redis), through the API and the admin."""

import json
import time

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client

from logins.selectors import LOCKED_PREFIX, account_key
from tests.integration.messaging.factories import StaffMemberFactory

pytestmark = pytest.mark.integration

PASSWORD = "a-staff-password"  # the factories' password


def _login(username: str, password: str):
    body = json.dumps({"username": username, "password": password})
    return Client().post("/auth/login", data=body, content_type="application/json")


def _admin_login(username: str, password: str) -> Client:
    client = Client()
    client.post("/admin/login/?next=/admin/", {"username": username, "password": password})
    return client


def _admin_logged_in(client: Client) -> bool:
    return client.get("/admin/").status_code == 200


@pytest.fixture
def lockout(settings):
    settings.LOGIN_LOCKOUT_FAILURES = 5
    settings.LOGIN_LOCKOUT_BASE_SECONDS = 60
    settings.LOGIN_LOCKOUT_MAX_SECONDS = 3600
    return settings


def test_the_sixth_login_after_five_failures_is_refused_while_another_account_logs_in(db, lockout):
    # given
    victim, bystander = StaffMemberFactory.create(), StaffMemberFactory.create()
    failures = [_login(victim.user.username, "guess").status_code for _ in range(5)]
    # when: the right password, next
    refused = _login(victim.user.username, PASSWORD)
    other = _login(bystander.user.username, PASSWORD)
    # then
    assert failures == [401] * 5
    assert refused.status_code == 429
    assert refused.json()["field"] == "username"
    assert 55 <= int(refused["Retry-After"]) <= 60
    assert "token" not in refused.json()
    assert other.status_code == 200


def test_the_account_is_one_whatever_the_case_of_its_name(db, lockout):
    staff = StaffMemberFactory.create()
    for _ in range(5):
        _login(staff.user.username.upper(), "guess")
    assert _login(staff.user.username, PASSWORD).status_code == 429


def test_a_success_clears_the_count(db, lockout):
    # given
    staff = StaffMemberFactory.create()
    for _ in range(4):
        _login(staff.user.username, "guess")
    assert _login(staff.user.username, PASSWORD).status_code == 200
    # when
    for _ in range(4):
        _login(staff.user.username, "guess")
    # then
    assert _login(staff.user.username, PASSWORD).status_code == 200


def test_the_lock_runs_out_and_the_next_failure_locks_twice_as_long(db, lockout):
    # given: a one-second first lock
    lockout.LOGIN_LOCKOUT_BASE_SECONDS = 1
    staff = StaffMemberFactory.create()
    for _ in range(5):
        _login(staff.user.username, "guess")
    assert _login(staff.user.username, PASSWORD).status_code == 429
    # when: it ran out, and the next guess is wrong again
    time.sleep(1.2)
    assert _login(staff.user.username, "guess").status_code == 401
    # then: locked again, for 2 s this time
    locked = _login(staff.user.username, PASSWORD)
    assert locked.status_code == 429
    assert locked["Retry-After"] == "2"


def _locked_until(username: str) -> float | None:
    """When the account's lock ends (a Unix time), as stored in the cache; None if not locked."""
    until = cache.get(LOCKED_PREFIX + account_key(username))
    return None if until is None else float(until)


def test_tries_while_locked_do_not_extend_the_lock(db, lockout):
    # given: an account locked for five seconds, a hundred times what ten refused tries take
    lockout.LOGIN_LOCKOUT_BASE_SECONDS = 5
    staff = StaffMemberFactory.create()
    for _ in range(5):
        _login(staff.user.username, "guess")
    until = _locked_until(staff.user.username)
    assert until is not None
    # when: ten more tries while it is locked
    tries = [_login(staff.user.username, "guess").status_code for _ in range(10)]
    # then: each was refused, the lock still ends when it did, and the account opens then
    assert tries == [429] * 10
    assert _locked_until(staff.user.username) == until
    time.sleep(max(0.0, until - time.time()) + 0.2)
    assert _login(staff.user.username, PASSWORD).status_code == 200


def test_the_admin_login_is_locked_by_the_same_count(db, lockout):
    # given: two staff users of the admin
    victim = User.objects.create_user("admin-victim", password=PASSWORD, is_staff=True, is_superuser=True)
    User.objects.create_user("admin-other", password=PASSWORD, is_staff=True, is_superuser=True)
    for _ in range(3):
        assert not _admin_logged_in(_admin_login("admin-victim", "guess"))
    for _ in range(2):  # the API's login counts for the same account
        _login(victim.username, "guess")
    # when
    refused = _admin_login("admin-victim", PASSWORD)
    other = _admin_login("admin-other", PASSWORD)
    # then
    assert not _admin_logged_in(refused)
    assert _admin_logged_in(other)
