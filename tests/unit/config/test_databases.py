"""One builder of the project's own psycopg connections from a DATABASES entry."""

import pytest

from config.databases import connection_params

pytestmark = pytest.mark.unit

ENTRY = {
    "NAME": "app",
    "USER": "app",
    "PASSWORD": "secret",
    "HOST": "db.internal",
    "PORT": 6432,
    "OPTIONS": {
        "sslmode": "verify-full",
        "sslrootcert": "/etc/ssl/db-ca.pem",
        "connect_timeout": 3,
        "application_name": "app:app1",
        "options": "-c search_path=app",
        # Django's and psycopg's own keys, not libpq options
        "prepare_threshold": None,
        "isolation_level": 1,
        "pool": True,
        "server_side_binding": False,
    },
}


def test_the_entry_and_every_libpq_option_it_sets():
    assert connection_params(ENTRY) == {
        "dbname": "app",
        "user": "app",
        "password": "secret",
        "host": "db.internal",
        "port": 6432,
        "sslmode": "verify-full",
        "sslrootcert": "/etc/ssl/db-ca.pem",
        "connect_timeout": 3,
        "application_name": "app:app1",
        "options": "-c search_path=app",
    }


def test_the_caller_overrides_win():
    params = connection_params(ENTRY, connect_timeout=2, application_name="health-probe", autocommit=True)
    assert (params["connect_timeout"], params["application_name"], params["autocommit"]) == (
        2,
        "health-probe",
        True,
    )
    assert params["sslmode"] == "verify-full"


def test_empty_settings_are_libpqs_defaults_as_for_django():
    params = connection_params({"NAME": "", "USER": "", "PASSWORD": "", "HOST": "", "PORT": ""})
    assert params == {"dbname": "postgres"}
