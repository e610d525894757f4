"""The admin's Active locks page and force-release, with and without the permission."""

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from config.databases import PRIMARY_DB_ALIAS
from locking.models import LockGrant
from locking.selectors import is_job_lock_held

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def primary_only(settings):
    """These tests are about the lock admin, not replica routing: every read on the primary."""
    settings.REPLICA_DATABASES = []


def staff_client(username: str, *codenames: str) -> Client:
    user = User.objects.create_user(username, password="pw-for-tests", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="locking", codename__in=codenames)
    )
    client = Client()
    client.force_login(user)
    return client


def test_active_locks_page_shows_the_live_holder(held):
    # given
    client = staff_client("viewer", "view_lockgrant")
    # when
    response = client.get(reverse("admin:locking_active_locks"))
    # then
    assert response.status_code == 200
    page = response.content.decode()
    assert held.name in page
    assert held.owner in page
    assert "Force release" not in page  # no permission, no button


def test_history_changelist_is_read_only(held):
    # given
    client = staff_client("viewer", "view_lockgrant")
    # when
    listing = client.get(reverse("admin:locking_lockgrant_changelist"))
    add = client.get(reverse("admin:locking_lockgrant_add"))
    # then
    assert listing.status_code == 200
    assert held.name in listing.content.decode()
    assert add.status_code == 403


def test_force_release_asks_then_releases_and_is_audited(held):
    # given
    client = staff_client("operator", "view_lockgrant", "force_release_lock")
    url = reverse("admin:locking_force_release", args=[held.name])
    # when
    confirmation = client.get(url)
    still_held = is_job_lock_held(held.name)
    without_reason = client.post(url)
    held_without_reason = is_job_lock_held(held.name)
    response = client.post(url, {"reason": "the holder's server is gone"})
    # then
    assert confirmation.status_code == 200
    assert "Yes, force-release" in confirmation.content.decode()
    assert still_held is True
    assert without_reason.status_code == 302 and held_without_reason is True
    assert response.status_code == 302
    assert not is_job_lock_held(held.name)
    grant = LockGrant.objects.using(PRIMARY_DB_ALIAS).get(owner=held.owner)
    assert grant.outcome == LockGrant.Outcome.FORCE_RELEASED
    assert grant.force_released_by == "operator"
    assert grant.force_release_reason == "the holder's server is gone"


def test_force_release_is_forbidden_without_the_permission(held):
    # given
    client = staff_client("viewer", "view_lockgrant")
    url = reverse("admin:locking_force_release", args=[held.name])
    # when
    confirmation = client.get(url)
    response = client.post(url)
    # then
    assert confirmation.status_code == 403
    assert response.status_code == 403
    assert is_job_lock_held(held.name)
