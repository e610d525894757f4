"""Shared fixtures. Tests run against the real services that ``make test`` starts."""

from collections.abc import Iterator

import pytest
from pytest_django.fixtures import _get_databases_for_setup, validate_django_db

from config.databases import PRIMARY_DB_ALIAS
from deploy.local import cluster
from tests import support


@pytest.fixture(scope="session")
def cluster_settings() -> cluster.Settings:
    """The ports and paths of the running local cluster."""
    return cluster.Settings()


@pytest.fixture
def child_env() -> dict[str, str]:
    """The environment of a child Python process that must use this test run's database."""
    return support.child_env()


@pytest.fixture(scope="session")
def django_db_setup(
    request: pytest.FixtureRequest,
    django_test_environment: None,
    django_db_blocker,
    django_db_use_migrations: bool,
    django_db_keepdb: bool,
    django_db_createdb: bool,
    django_db_modify_db_settings: None,
) -> Iterator[None]:
    """pytest-django's setup, with the replica aliases pointing at the real replica.

    The test database is created (or reused) on the primary only. Streaming replication copies
    it to the replica by itself, so each replica alias then gets the same database name on its
    own server, where a test-mirror alias would have been pointed at the primary. The aliases
    keep ``TEST["MIRROR"]``, so Django never flushes or resets sequences through them.
    """
    from django.conf import settings
    from django.db import connections
    from django.test.utils import setup_databases, teardown_databases

    if not django_db_use_migrations:
        from pytest_django.fixtures import _disable_migrations

        _disable_migrations()
    replicas = set(getattr(settings, "REPLICA_DATABASES", ()))
    aliases, serialized_aliases = _get_databases_for_setup(request.session.items)
    keepdb = django_db_keepdb and not django_db_createdb
    with django_db_blocker.unblock():
        db_cfg = setup_databases(
            verbosity=request.config.option.verbose,
            interactive=False,
            aliases=(aliases - replicas) | {PRIMARY_DB_ALIAS},  # type: ignore[arg-type]  # a set works
            serialized_aliases=serialized_aliases - replicas,
            keepdb=keepdb,
        )
    test_database = connections[PRIMARY_DB_ALIAS].settings_dict["NAME"]
    for alias in replicas:
        connections[alias].close()
        own_settings = connections.settings[alias]
        own_settings["NAME"] = test_database
        settings.DATABASES[alias]["NAME"] = test_database
        connections[alias].settings_dict = own_settings
    yield
    if not keepdb:
        with django_db_blocker.unblock():
            teardown_databases(db_cfg, verbosity=request.config.option.verbose)


def _test_may_read_a_replica(request: pytest.FixtureRequest) -> bool:
    """False for a database test that did not list a replica alias; True for every other test."""
    from django.conf import settings
    from django.test import TransactionTestCase

    replicas = set(getattr(settings, "REPLICA_DATABASES", ()))
    test_cls = getattr(request.node, "cls", None)
    marker = request.node.get_closest_marker("django_db")
    if marker is not None:
        databases = validate_django_db(marker)[2]
    elif test_cls is not None and issubclass(test_cls, TransactionTestCase):
        databases = test_cls.databases
    elif {"db", "transactional_db"} & set(request.fixturenames):
        databases = None
    else:
        return True  # no database access at all
    if databases == "__all__":
        return True
    return bool(databases) and bool(replicas & set(databases or ()))


@pytest.fixture(autouse=True)
def _reads_on_primary_unless_replica_allowed(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test reads from the primary unless it lists a replica alias in ``django_db(databases=...)``:
    Django's test cases refuse queries to aliases a test did not list, and the router would
    otherwise send committed-data reads there."""
    if _test_may_read_a_replica(request):
        yield
        return
    from replicas.context import use_primary_db

    with use_primary_db:
        yield
