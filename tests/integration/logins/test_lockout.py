"""Lockout per account and client address with backoff, and the account-wide throttle, on the
real cache (Redis), through the API and the admin.

The test client's peer is 127.0.0.1, a trusted proxy (``HEALTH_TRUSTED_PROXIES``), so a test
names a client address as NGINX would: in ``X-Forwarded-For``. Without one the client is
127.0.0.1 itself.
"""

import json
import time

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client
from django_redis import get_redis_connection

from logins.selectors import login_keys
from logins.services import login_failure_record
from tests.integration.messaging.factories import StaffMemberFactory

pytestmark = pytest.mark.integration

PASSWORD = "a-staff-password"  # the factories' password
LOCAL = "127.0.0.1"  # the test client's own address


def _client(address: str | None) -> Client:
    return Client(headers={"X-Forwarded-For": address} if address else {})


def _login(username: str, password: str, address: str | None = None):
    body = json.dumps({"username": username, "password": password})
    return _client(address).post("/auth/login", data=body, content_type="application/json")


def _admin_login(username: str, password: str, address: str | None = None) -> Client:
    client = _client(address)
    client.post("/admin/login/?next=/admin/", {"username": username, "password": password})
    return client


def _admin_logged_in(client: Client) -> bool:
    return client.get("/admin/").status_code == 200


def _locked_until(username: str) -> float | None:
    """When the account's lock ends (a Unix time), as stored in the cache; None if not locked."""
    until = cache.get(login_keys(username=username, client=LOCAL).locked)
    return None if until is None else float(until)


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
    sent_at = time.time()
    assert _login(staff.user.username, "guess").status_code == 401
    answered_at = time.time()
    # then: locked again, for 2 s this time (from a moment inside that request), however long
    # the machine took to answer it
    until = _locked_until(staff.user.username)
    assert until is not None
    assert sent_at + 2 <= until <= answered_at + 2
    locked = _login(staff.user.username, PASSWORD)
    assert locked.status_code == 429
    assert 1 <= int(locked["Retry-After"]) <= 2


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


# --- per client address, and the account-wide throttle ---------------------------------------


def test_failures_from_one_address_never_lock_the_account_for_another(db, lockout):
    # given: five failures from one client address
    staff = StaffMemberFactory.create()
    attacker, owner = "203.0.113.10", "198.51.100.20"
    failures = [_login(staff.user.username, "guess", attacker).status_code for _ in range(5)]
    # when: the right password, from there and from the owner's address
    from_attacker = _login(staff.user.username, PASSWORD, attacker)
    from_owner = _login(staff.user.username, PASSWORD, owner)
    # then: only the failing address is locked
    assert failures == [401] * 5
    assert from_attacker.status_code == 429
    assert from_owner.status_code == 200


def test_the_admin_login_is_locked_per_address_too(db, lockout):
    # given: an admin user whose login failed five times from one address (API and admin forms)
    User.objects.create_user("admin-target", password=PASSWORD, is_staff=True, is_superuser=True)
    attacker, owner = "203.0.113.11", "198.51.100.21"
    for _ in range(3):
        assert not _admin_logged_in(_admin_login("admin-target", "guess", attacker))
    for _ in range(2):
        _login("admin-target", "guess", attacker)
    # when / then: locked from that address, not from the owner's
    assert not _admin_logged_in(_admin_login("admin-target", PASSWORD, attacker))
    assert _admin_logged_in(_admin_login("admin-target", PASSWORD, owner))


def test_a_forged_forwarded_for_from_an_untrusted_peer_is_the_same_address(db, lockout):
    # given: a client outside the trusted proxies that failed five times
    staff = StaffMemberFactory.create()
    body = json.dumps({"username": staff.user.username, "password": "guess"})
    outsider = Client(REMOTE_ADDR="203.0.113.12")
    for _ in range(5):
        outsider.post("/auth/login", data=body, content_type="application/json")
    # when: it claims another address in X-Forwarded-For
    right = json.dumps({"username": staff.user.username, "password": PASSWORD})
    forged = outsider.post(
        "/auth/login", data=right, content_type="application/json", headers={"X-Forwarded-For": "192.0.2.99"}
    )
    # then: it is still the locked address (only a trusted proxy's header is believed)
    assert forged.status_code == 429


@pytest.fixture
def throttle(lockout):
    lockout.LOGIN_ACCOUNT_THROTTLE_FAILURES = 6
    lockout.LOGIN_ACCOUNT_THROTTLE_SECONDS = 30
    return lockout


def test_guesses_spread_over_many_addresses_are_throttled_but_not_the_owners_address(db, throttle):
    # given: the owner logged in from home once; then two failures from each of three addresses
    staff = StaffMemberFactory.create()
    home = "198.51.100.30"
    assert _login(staff.user.username, PASSWORD, home).status_code == 200
    failures = [
        _login(staff.user.username, "guess", f"203.0.113.{20 + index}").status_code
        for index in range(3)
        for _ in range(2)
    ]
    # when: a fourth address tries (even with the right password), and the owner from home
    fourth = _login(staff.user.username, PASSWORD, "203.0.113.30")
    from_home = _login(staff.user.username, PASSWORD, home)
    # then: none of the addresses is locked, the new one is throttled, home is not
    assert failures == [401] * 6
    assert fourth.status_code == 429
    assert 1 <= int(fourth["Retry-After"]) <= 30
    assert from_home.status_code == 200


def test_the_throttle_runs_out_and_never_locks_the_owner_out(db, throttle):
    # given: an account throttled for one second after failures from six addresses
    throttle.LOGIN_ACCOUNT_THROTTLE_SECONDS = 1
    staff = StaffMemberFactory.create()
    for index in range(6):
        assert _login(staff.user.username, "guess", f"203.0.113.{40 + index}").status_code == 401
    assert _login(staff.user.username, PASSWORD, "192.0.2.40").status_code == 429
    # when: the period has passed
    time.sleep(1.2)
    # then: the owner, from an address the account never saw, logs in
    assert _login(staff.user.username, PASSWORD, "192.0.2.40").status_code == 200


def _cache_keys(fragment: str) -> list[bytes]:
    pattern = cache.make_key(f"*{fragment}*")
    return list(get_redis_connection("default").scan_iter(match=pattern, count=1000))


def test_made_up_usernames_use_a_bounded_number_of_keys(db, lockout):
    # given: eight buckets for usernames no user has
    lockout.LOGIN_UNKNOWN_USERNAME_BUCKETS = 8
    staff = StaffMemberFactory.create()
    # when: failures for 400 made-up names from 100 addresses, and one for a real account
    for index in range(400):
        login_failure_record(username=f"made-up-{index}-{time.time_ns()}", client=f"203.0.113.{index % 100}")
    login_failure_record(username=staff.user.username, client="203.0.113.1")
    # then: at most a failure count and a lock per bucket, and the real account has its own keys
    unknown = _cache_keys("login-failures:unknown:") + _cache_keys("login-locked:unknown:")
    get_redis_connection("default").delete(*unknown)  # locked buckets would refuse later tests' names
    assert 0 < len(unknown) <= 2 * 8
    assert cache.get(login_keys(username=staff.user.username, client="203.0.113.1").failures) == 1


def test_made_up_usernames_lock_like_real_ones(db, lockout):
    # an address failing on a made-up name is refused as it would be on a real one: the answers
    # tell no name apart
    name = f"nobody-{time.time_ns()}"
    answers = [_login(name, "guess", "203.0.113.50").status_code for _ in range(6)]
    assert answers == [401] * 5 + [429]
