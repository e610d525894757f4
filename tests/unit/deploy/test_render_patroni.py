"""``manage.py render_deploy patroni``: a production member of the failover set, its etcd member
and HAProxy, with authentication and TLS everywhere and no password in any file."""

import subprocess

import pytest
import yaml
from django.core.management import CommandError, call_command
from django.test import override_settings

from deploy.local import cluster
from deploy.local.cluster import patroni as local_patroni
from deploy.patroni.render import DCS_TIMING, PatroniValues, patroni_config
from tests.programs import require_program

pytestmark = pytest.mark.unit

PRODUCTION = {
    "DEPLOY_PATRONI_NAME": "pg1",
    "DEPLOY_PATRONI_MEMBERS": ["pg1=10.1.0.11", "pg2=10.1.0.12"],
    "DEPLOY_ETCD_NAME": "etcd1",
    "DEPLOY_ETCD_MEMBERS": ["etcd1=10.1.0.11", "etcd2=10.1.0.12", "etcd3=10.1.0.13"],
    "DEPLOY_PATRONI_CLIENT_NETWORK": "10.1.0.0/24",
}


@pytest.fixture
def tls_files(tmp_path):
    """A CA and a certificate (HAProxy's config check opens the CA file)."""
    require_program("openssl", "openssl")
    folder = tmp_path / "tls"
    folder.mkdir()
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
         "-keyout", str(folder / "host.key"), "-out", str(folder / "ca.crt")],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    (folder / "host.crt").write_bytes((folder / "ca.crt").read_bytes())
    return {
        "DEPLOY_PATRONI_TLS_CA_FILE": str(folder / "ca.crt"),
        "DEPLOY_PATRONI_TLS_CERT_FILE": str(folder / "host.crt"),
        "DEPLOY_PATRONI_TLS_KEY_FILE": str(folder / "host.key"),
    }


def _render(out, **values):
    with override_settings(**values):
        call_command("render_deploy", "patroni", "--out", str(out))
    return {path.name: path.read_text() for path in out.iterdir()}


def test_a_database_host_gets_patroni_etcd_and_haproxy_with_tls_and_authentication(tmp_path, tls_files):
    # when
    files = _render(tmp_path / "out", **PRODUCTION, **tls_files)
    # then Patroni's failover settings are the measured ones, synchronous and failsafe
    config = yaml.safe_load(files["patroni.yml"])
    dcs = config["bootstrap"]["dcs"]
    assert {key: dcs[key] for key in DCS_TIMING} == {"ttl": 10, "loop_wait": 1, "retry_timeout": 4}
    assert (dcs["synchronous_mode"], dcs["synchronous_mode_strict"], dcs["failsafe_mode"]) == (
        True,
        False,
        True,
    )
    assert dcs["postgresql"]["use_pg_rewind"] is True
    assert dcs["postgresql"]["parameters"]["wal_log_hints"] == "on"
    assert "data-checksums" in config["bootstrap"]["initdb"]
    # and the REST API asks a user for its unsafe endpoints, over TLS
    restapi = config["restapi"]
    assert (
        restapi["authentication"]["username"]
        and restapi["certfile"] == tls_files["DEPLOY_PATRONI_TLS_CERT_FILE"]
    )
    # and etcd is reached over TLS with a client certificate
    assert config["etcd3"]["protocol"] == "https"
    assert config["etcd3"]["cert"] == tls_files["DEPLOY_PATRONI_TLS_CERT_FILE"]
    assert config["etcd3"]["hosts"] == ["10.1.0.11:2379", "10.1.0.12:2379", "10.1.0.13:2379"]
    # and replication (and pg_rewind) checks the leader's certificate; the server refuses plain TCP
    auth = config["postgresql"]["authentication"]
    assert {auth[user]["sslmode"] for user in ("replication", "rewind", "superuser")} == {"verify-full"}
    assert config["postgresql"]["parameters"]["ssl"] == "on"
    hba = config["postgresql"]["pg_hba"]
    assert "hostssl replication replicator 10.1.0.0/24 scram-sha-256" in hba
    assert not [line for line in hba if line.startswith("host ") and not line.endswith("reject")]
    # and no password is written anywhere
    assert "password" not in files["patroni.yml"]
    # and etcd demands client certificates from clients and peers
    etcd = yaml.safe_load(files["etcd.yml"])
    assert etcd["client-transport-security"]["client-cert-auth"] is True
    assert etcd["peer-transport-security"]["client-cert-auth"] is True
    assert etcd["listen-client-urls"] == "https://10.1.0.11:2379"
    assert etcd["initial-cluster"].count("https://") == 3
    # and HAProxy checks the members' REST API over verified TLS
    assert "check-ssl verify required" in files["haproxy.cfg"]


def test_the_rendered_files_pass_haproxy_s_and_patroni_s_own_checks(tmp_path, tls_files):
    files = _render(tmp_path / "out", **PRODUCTION, **tls_files)
    haproxy = subprocess.run(
        [require_program("haproxy", "haproxy"), "-c", "-f", str(tmp_path / "out" / "haproxy.cfg")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert haproxy.returncode == 0, haproxy.stdout + haproxy.stderr
    checked = subprocess.run(
        [require_program("patroni", "patroni"), "--validate-config", str(tmp_path / "out" / "patroni.yml")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    # Only what cannot hold on this machine: the member's own address is not here (binding its
    # ports fails), and Patroni 3.0's validator still asks for the deprecated bootstrap.pg_hba.
    complaints = [
        line
        for line in (checked.stdout + checked.stderr).splitlines()
        if line.strip() and "already in use" not in line and not line.startswith("bootstrap.pg_hba")
    ]
    assert complaints == [], files["patroni.yml"]


def test_an_app_server_gets_only_haproxy(tmp_path, tls_files):
    values = {**PRODUCTION, "DEPLOY_PATRONI_NAME": "", "DEPLOY_ETCD_NAME": "", **tls_files}
    assert set(_render(tmp_path / "out", **values)) == {"haproxy.cfg"}


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"DEPLOY_PATRONI_TLS_CA_FILE": ""}, "PATRONI_TLS_CA_FILE"),
        ({"DEPLOY_ETCD_MEMBERS": []}, "ETCD_MEMBERS"),
        ({"DEPLOY_PATRONI_CLIENT_NETWORK": ""}, "PATRONI_CLIENT_NETWORK"),
        ({"DEPLOY_PATRONI_NAME": "pg9"}, "PATRONI_NAME"),
        ({"DEPLOY_ETCD_MEMBERS": ["etcd1=10.1.0.11", "etcd2=10.1.0.12"]}, "ETCD_MEMBERS"),
        ({"DEPLOY_PATRONI_MEMBERS": ["10.1.0.11"]}, "PATRONI_MEMBERS"),
    ],
)
def test_a_missing_or_wrong_value_stops_the_rendering_naming_it(tmp_path, tls_files, change, named):
    with pytest.raises(CommandError, match=named):
        _render(tmp_path / "out", **{**PRODUCTION, **tls_files, **change})
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_the_local_cluster_renders_the_same_failover_settings_without_tls(tmp_path):
    cfg = cluster.Settings(state_dir=tmp_path)
    (tmp_path / "pg").mkdir()
    values = PatroniValues(
        scope=local_patroni.SCOPE, member=local_patroni.pg_members(cfg)[0], etcd_hosts=cfg.etcd_endpoints(),
        data_dir=tmp_path / "pg" / "pg1", bin_dir=cluster.PG_BIN, pgpass=tmp_path / "pgpass",
        socket_dir=tmp_path, passwords={"superuser": "s", "replication": "r", "rewind": "w", "restapi": "a"},
    )  # fmt: skip
    config = patroni_config(values)
    assert {key: config["bootstrap"]["dcs"][key] for key in DCS_TIMING} == DCS_TIMING
    assert config["bootstrap"]["dcs"]["failsafe_mode"] is True
    assert config["etcd3"]["protocol"] == "http"
    assert config["restapi"]["authentication"] == {"username": "patroni", "password": "a"}
