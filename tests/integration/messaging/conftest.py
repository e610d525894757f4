"""Fixtures for the messaging integration tests: churches, staff with tokens, API clients."""

import pytest
from django.test import Client

from config.celery import app as celery_app
from messaging.tokens import services
from tests.integration.messaging.factories import ChurchFactory, StaffMemberFactory


@pytest.fixture
def church(db):
    return ChurchFactory.create()


@pytest.fixture
def other_church(db):
    return ChurchFactory.create(name="Another church")


def _client_for(church) -> Client:
    staff = StaffMemberFactory.create(church=church)
    token = services.api_token_create(user=staff.user)
    return Client(headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def api(church) -> Client:
    """An API client logged in as a staff member of ``church``."""
    return _client_for(church)


@pytest.fixture
def other_api(other_church) -> Client:
    """An API client logged in as a staff member of ``other_church``."""
    return _client_for(other_church)


@pytest.fixture
def eager_celery():
    """Run tasks in the test process, so a send is complete when the request returns."""
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_eager_propagates = False
