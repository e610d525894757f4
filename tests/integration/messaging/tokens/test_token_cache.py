"""The per-process token cache (messaging/tokens/cache.py) on real PostgreSQL and Redis.

Two ``TokenCache`` objects stand for two processes (or two servers): they share only the
database and the Redis revocation generation, exactly like separate gunicorn workers.
"""

import time
from datetime import timedelta

import pytest
import redis
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from config.databases import PRIMARY_DB_ALIAS
from messaging.models import ApiToken
from messaging.tokens import services
from messaging.tokens.cache import RevocationNotPublished, TokenCache, token_hash
from tests.integration.messaging.factories import StaffMemberFactory

pytestmark = [pytest.mark.integration, pytest.mark.django_db(databases=[PRIMARY_DB_ALIAS, "replica"])]


@pytest.fixture
def staff(church):
    return StaffMemberFactory.create(church=church)


@pytest.fixture
def token(staff):
    return services.api_token_create(user=staff.user)


def _closed_port_client() -> redis.Redis:
    # A real client towards a port nothing listens on: every command fails to connect.
    return redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, socket_timeout=0.2)


def test_a_cached_token_costs_no_query(staff, token):
    # given: a process that has checked the token once
    cache = TokenCache()
    assert cache.staff_member(raw_token=token) == staff
    # when: it checks it again
    with (
        CaptureQueriesContext(connections[PRIMARY_DB_ALIAS]) as primary,
        CaptureQueriesContext(connections["replica"]) as replica,
    ):
        again = cache.staff_member(raw_token=token)
    # then: answered from memory, church and user included
    assert again == staff
    assert again.church.name == staff.church.name
    assert (len(primary.captured_queries), len(replica.captured_queries)) == (0, 0)
    assert cache.hits == 1


def test_a_miss_asks_the_primary_once_and_never_the_replica(staff, token):
    cache = TokenCache()
    with (
        CaptureQueriesContext(connections[PRIMARY_DB_ALIAS]) as primary,
        CaptureQueriesContext(connections["replica"]) as replica,
    ):
        assert cache.staff_member(raw_token=token) == staff
    assert len(primary.captured_queries) == 1
    assert len(replica.captured_queries) == 0


def test_logout_on_one_process_is_refused_by_another_at_once(staff, token):
    # given: two processes that both hold the token in their caches
    this, other = TokenCache(), TokenCache()
    assert this.staff_member(raw_token=token) == staff
    assert other.staff_member(raw_token=token) == staff
    # when: the user logs out (through the service, as the API does)
    services.api_token_revoke(raw_token=token)
    # then: the next check in either process refuses it
    assert other.staff_member(raw_token=token) is None
    assert this.staff_member(raw_token=token) is None


def test_deactivation_is_refused_at_once_after_commit(staff, token, django_capture_on_commit_callbacks):
    other = TokenCache()
    assert other.staff_member(raw_token=token) == staff
    # when: an administrator deactivates the user (the admin saves the user)
    with django_capture_on_commit_callbacks(execute=True):
        staff.user.is_active = False
        staff.user.save()
    # then
    assert other.staff_member(raw_token=token) is None


def test_a_moved_staff_member_is_seen_at_once(staff, token, other_church, django_capture_on_commit_callbacks):
    other = TokenCache()
    assert other.staff_member(raw_token=token).church == staff.church
    # when: the staff member moves to another church
    with django_capture_on_commit_callbacks(execute=True):
        staff.church = other_church
        staff.save()
    # then: the next check does not serve the cached church; the move ended the token
    assert other.staff_member(raw_token=token) is None


def test_a_deleted_token_is_refused_at_once(staff, token, django_capture_on_commit_callbacks):
    other = TokenCache()
    assert other.staff_member(raw_token=token) == staff
    # when: the token row is deleted (the admin, a purge)
    with django_capture_on_commit_callbacks(execute=True) as published:
        ApiToken.objects.filter(key_hash=token_hash(raw_token=token)).delete()
    # then: one publication, and the token is refused
    assert len(published) == 1
    assert other.staff_member(raw_token=token) is None


def test_an_expired_token_is_refused_even_from_the_cache(staff):
    # given: a token about to expire, cached
    token = services.api_token_create(user=staff.user)
    ApiToken.objects.filter(key_hash=token_hash(raw_token=token)).update(
        expires_at=timezone.now() + timedelta(seconds=0.5)
    )
    cache = TokenCache()
    assert cache.staff_member(raw_token=token) == staff
    # when: it expires
    time.sleep(0.6)
    # then
    assert cache.staff_member(raw_token=token) is None


def test_without_redis_every_check_asks_the_primary(staff, token, monkeypatch):
    cache = TokenCache()
    monkeypatch.setattr(cache, "_redis", _closed_port_client)
    assert cache.staff_member(raw_token=token) == staff
    with CaptureQueriesContext(connections[PRIMARY_DB_ALIAS]) as primary:
        assert cache.staff_member(raw_token=token) == staff
    assert len(primary.captured_queries) == 1
    assert cache.hits == 0


def test_a_revocation_that_cannot_be_published_is_an_error(token, monkeypatch):
    cache = TokenCache()
    monkeypatch.setattr(cache, "_redis", _closed_port_client)
    with pytest.raises(RevocationNotPublished):
        cache.bump()


def test_a_logout_that_cannot_be_published_answers_503_and_the_token_is_gone(api, monkeypatch):
    from messaging.tokens import cache

    monkeypatch.setattr(cache.token_cache, "_redis", _closed_port_client)
    response = api.post("/auth/logout")
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert response.json()["detail"].startswith("the logout could not be confirmed")
    monkeypatch.undo()
    cache.token_cache.clear()
    assert api.get("/api/contacts").status_code == 401
