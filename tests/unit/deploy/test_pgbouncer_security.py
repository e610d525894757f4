"""PgBouncer renderings: no catch-all database in production, TLS modes checked, a query timeout."""

import configparser
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import override_settings

from deploy.pgbouncer.render import PgBouncerConfigError, PgBouncerValues, render_pgbouncer_ini

pytestmark = pytest.mark.unit


# A production rendering: the databases on other hosts, PgBouncer listening beyond loopback.
PRODUCTION_TLS = dict(
    client_tls_sslmode="require", client_tls_cert_file="/tls/pgb.crt", client_tls_key_file="/tls/pgb.key",
    server_tls_sslmode="verify-full", server_tls_ca_file="/tls/db-ca.crt",
)  # fmt: skip


def _values(**overrides) -> PgBouncerValues:
    base = dict(
        db_name="app", primary_host="db1", primary_port=5432, replica_host="db2", replica_port=5432,
        listen_addr="10.0.0.2", listen_port=6432, auth_file=Path("/etc/pgbouncer/userlist.txt"),
        **PRODUCTION_TLS,
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
    ini = _ini(tmp_path)["pgbouncer"]
    assert (ini["client_tls_sslmode"], ini["client_tls_cert_file"], ini["client_tls_key_file"]) == (
        "require", "/tls/pgb.crt", "/tls/pgb.key",
    )  # fmt: skip
    assert (ini["server_tls_sslmode"], ini["server_tls_ca_file"]) == ("verify-full", "/tls/db-ca.crt")
    assert ini["query_timeout"] == "35"


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"client_tls_sslmode": "on"}, "PGBOUNCER_CLIENT_TLS_SSLMODE"),
        ({"client_tls_cert_file": ""}, "PGBOUNCER_CLIENT_TLS_CERT_FILE"),
        ({"server_tls_ca_file": ""}, "PGBOUNCER_SERVER_TLS_CA_FILE"),
        ({"server_tls_sslmode": "strict"}, "PGBOUNCER_SERVER_TLS_SSLMODE"),
    ],
)
def test_a_tls_setting_pgbouncer_would_refuse_is_named(tmp_path, overrides, variable):
    with pytest.raises(PgBouncerConfigError, match=variable):
        render_pgbouncer_ini(_values(**overrides), tmp_path / "pgbouncer.ini")


@pytest.mark.parametrize("mode", ["disable", "allow", "prefer", "require", "verify-ca"])
def test_a_database_beyond_this_host_must_be_verify_full(tmp_path, mode):
    # given PostgreSQL on other hosts (a VM's db1/db2, a pod's Services)
    with pytest.raises(PgBouncerConfigError, match="PGBOUNCER_SERVER_TLS_SSLMODE"):
        render_pgbouncer_ini(
            _values(server_tls_sslmode=mode, server_tls_ca_file="/tls/db-ca.crt"), tmp_path / "p.ini"
        )


@pytest.mark.parametrize("mode", ["disable", "allow", "prefer"])
def test_clients_beyond_loopback_must_use_tls(tmp_path, mode):
    with pytest.raises(PgBouncerConfigError, match="PGBOUNCER_CLIENT_TLS_SSLMODE"):
        render_pgbouncer_ini(_values(client_tls_sslmode=mode), tmp_path / "p.ini")


def test_on_loopback_both_ways_no_tls_is_needed(tmp_path):
    # the local cluster: PostgreSQL and the clients on this host
    ini = _ini(
        tmp_path, primary_host="127.0.0.1", replica_host="127.0.0.1", listen_addr="127.0.0.1",
        client_tls_sslmode="disable", server_tls_sslmode="prefer", server_tls_ca_file="",
    )["pgbouncer"]  # fmt: skip
    assert (ini["client_tls_sslmode"], ini["server_tls_sslmode"]) == ("disable", "prefer")


def test_a_vms_rendering_verifies_postgresql_by_default(tmp_path):
    # given only what render_deploy requires (PgBouncer on loopback, PostgreSQL elsewhere)
    with override_settings(
        DEPLOY_PG_PRIMARY_HOST="db-primary.internal",
        DEPLOY_PG_REPLICA_HOST="db-replica.internal",
        DEPLOY_PGBOUNCER_AUTH_FILE="/etc/pgbouncer/userlist.txt",
    ):
        call_command("render_deploy", "pgbouncer", "--out", str(tmp_path))
    parser = configparser.ConfigParser(comment_prefixes=(";",), interpolation=None)
    parser.read(tmp_path / "pgbouncer.ini")
    ini = parser["pgbouncer"]
    assert (ini["server_tls_sslmode"], ini["server_tls_ca_file"]) == (
        "verify-full",
        "/etc/pgbouncer/tls/postgres-ca.crt",
    )
    assert ini["listen_addr"] == "127.0.0.1"


def test_in_kubernetes_pgbouncer_takes_tls_from_clients_and_verifies_postgresql(tmp_path):
    ini = configparser.ConfigParser(comment_prefixes=(";",), interpolation=None)
    ini.read(Path(__file__).resolve().parents[3] / "deploy" / "k8s" / "base" / "pgbouncer.ini")
    assert ini["pgbouncer"]["listen_addr"] == "0.0.0.0"  # noqa: S104 - in a pod, behind TLS
    assert ini["pgbouncer"]["client_tls_sslmode"] == "require"
    assert ini["pgbouncer"]["server_tls_sslmode"] == "verify-full"
    assert ini["pgbouncer"]["server_tls_ca_file"].endswith("/ca.crt")
