"""PgBouncer renderings: no catch-all database in production, TLS modes checked, a query timeout."""

import configparser
from pathlib import Path

import pytest

from deploy.pgbouncer.render import PgBouncerConfigError, PgBouncerValues, render_pgbouncer_ini

pytestmark = pytest.mark.unit


def _values(**overrides) -> PgBouncerValues:
    base = dict(
        db_name="app", primary_host="db1", primary_port=5432, replica_host="db2", replica_port=5432,
        listen_addr="10.0.0.2", listen_port=6432, auth_file=Path("/etc/pgbouncer/userlist.txt"),
    )  # fmt: skip
    return PgBouncerValues(**{**base, **overrides})


def _ini(tmp_path, **overrides) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(comment_prefixes=(";",), interpolation=None)
    parser.read_string(render_pgbouncer_ini(_values(**overrides), tmp_path / "pgbouncer.ini").read_text())
    return parser


def test_a_production_rendering_serves_only_its_two_pools(tmp_path):
    ini = _ini(tmp_path)
    assert set(ini["databases"]) == {"app", "app_replica"}


def test_the_catch_all_is_there_only_when_asked_for(tmp_path):
    ini = _ini(tmp_path, catch_all=True)
    assert ini["databases"]["*"] == "host=db1 port=5432"


def test_tls_modes_and_files_are_rendered(tmp_path):
    ini = _ini(
        tmp_path,
        client_tls_sslmode="require",
        client_tls_cert_file="/tls/pgb.crt",
        client_tls_key_file="/tls/pgb.key",
        server_tls_sslmode="verify-full",
        server_tls_ca_file="/tls/db-ca.crt",
    )["pgbouncer"]
    assert (ini["client_tls_sslmode"], ini["client_tls_cert_file"], ini["client_tls_key_file"]) == (
        "require", "/tls/pgb.crt", "/tls/pgb.key",
    )  # fmt: skip
    assert (ini["server_tls_sslmode"], ini["server_tls_ca_file"]) == ("verify-full", "/tls/db-ca.crt")
    assert ini["query_timeout"] == "35"


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"client_tls_sslmode": "on"}, "PGBOUNCER_CLIENT_TLS_SSLMODE"),
        ({"client_tls_sslmode": "require"}, "PGBOUNCER_CLIENT_TLS_CERT_FILE"),
        ({"server_tls_sslmode": "verify-full"}, "PGBOUNCER_SERVER_TLS_CA_FILE"),
        ({"server_tls_sslmode": "strict"}, "PGBOUNCER_SERVER_TLS_SSLMODE"),
    ],
)
def test_a_tls_setting_pgbouncer_would_refuse_is_named(tmp_path, overrides, variable):
    with pytest.raises(PgBouncerConfigError, match=variable):
        render_pgbouncer_ini(_values(**overrides), tmp_path / "pgbouncer.ini")
