"""The project's own connections honour the DATABASES entry's libpq options, TLS included."""

import psycopg
import pytest
from django.db import connections

from config import postgres
from config.databases import PRIMARY_DB_ALIAS, connect

pytestmark = pytest.mark.integration


def _entry(**options: object) -> dict:
    entry = dict(connections.settings[PRIMARY_DB_ALIAS])
    return {**entry, "OPTIONS": {**entry.get("OPTIONS", {}), **options}}


def test_a_connection_from_the_primary_entry_answers_as_its_application():
    with connect(_entry(application_name="databases-test"), autocommit=True) as connection:
        name = connection.execute("SELECT current_setting('application_name')").fetchone()
    assert name == ("databases-test",)


def test_the_entrys_sslmode_reaches_libpq():
    # given: the local servers speak no TLS, and the entry requires it
    entry = _entry(sslmode="require")
    # then: our own connection refuses to go on without TLS, as Django's would
    with pytest.raises(psycopg.OperationalError, match="SSL"):
        connect(entry, autocommit=True, connect_timeout=2)
    # and so does a health probe's (it reports the primary unreachable)
    with pytest.raises(postgres.QueryUnavailable):
        postgres.connect(entry, timeout=1.0)
