"""``manage.py render_deploy`` fills each family of templates from settings into a folder."""

import configparser
import os

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from deploy import selectors
from deploy.local import cluster
from deploy.pgbouncer.render import render_pgbouncer_ini
from tests.support import run_script
from tests.unit.deploy.k8s_build import EXPORTER_IMAGE, PGBOUNCER_IMAGE

pytestmark = pytest.mark.unit


def _ini(path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, comment_prefixes=(";",))
    parser.read(path)
    return parser


def test_pgbouncer_is_rendered_from_settings(tmp_path):
    # given
    with override_settings(
        DEPLOY_PGBOUNCER_PORT=6432,
        DEPLOY_PG_PRIMARY_HOST="db-primary.internal",
        DEPLOY_PG_REPLICA_HOST="db-replica.internal",
        DEPLOY_PGBOUNCER_AUTH_FILE="/etc/pgbouncer/userlist.txt",
        DB_NAME="crm",
    ):
        # when
        call_command("render_deploy", "pgbouncer", "--out", str(tmp_path))
    # then
    ini = _ini(tmp_path / "pgbouncer.ini")
    assert ini["pgbouncer"]["listen_port"] == "6432"
    assert ini["pgbouncer"]["pool_mode"] == "transaction"
    assert (ini["pgbouncer"]["default_pool_size"], ini["pgbouncer"]["max_client_conn"]) == ("30", "1000")
    assert ini["pgbouncer"]["auth_type"] == "scram-sha-256"
    assert (ini["pgbouncer"]["admin_users"], ini["pgbouncer"]["stats_users"]) == (
        "pgbouncer_admin",
        "pgbouncer_stats",
    )
    assert ini["databases"]["crm"].startswith("host=db-primary.internal ")
    assert "dbname=crm" in ini["databases"]["crm_replica"]


def test_with_the_clusters_values_render_deploy_reproduces_the_local_clusters_pgbouncer(tmp_path):
    # given: the local cluster's rendering of the same template
    cfg = cluster.Settings()
    auth_file = tmp_path / "userlist.txt"
    cluster_ini = render_pgbouncer_ini(
        cluster.pgbouncer_values(cfg, auth_file=auth_file), tmp_path / "cluster.ini"
    )
    # when the environment names the cluster's hosts, ports and auth file
    with override_settings(
        DEPLOY_PG_PRIMARY_HOST="127.0.0.1",
        DEPLOY_PG_PRIMARY_PORT=cfg.pg_primary_port,
        DEPLOY_PG_REPLICA_HOST="127.0.0.1",
        DEPLOY_PG_REPLICA_PORT=cfg.pg_replica_port,
        DEPLOY_PGBOUNCER_PORT=cfg.pgbouncer_port,
        DEPLOY_PGBOUNCER_AUTH_FILE=str(auth_file),
        DEPLOY_PGBOUNCER_CATCH_ALL=True,
        # PostgreSQL on loopback: the cluster's own TLS modes (production verifies: verify-full)
        DEPLOY_PGBOUNCER_SERVER_TLS_SSLMODE="prefer",
        DEPLOY_PGBOUNCER_SERVER_TLS_CA_FILE="",
    ):
        call_command("render_deploy", "pgbouncer", "--out", str(tmp_path / "rendered"))
    # then
    assert (tmp_path / "rendered" / "pgbouncer.ini").read_text() == cluster_ini.read_text()


def test_nginx_is_rendered_by_the_edge_renderer_with_its_includes(tmp_path, monkeypatch):
    # given
    monkeypatch.setenv("NGINX_SERVER_NAME", "sms.example.org")
    monkeypatch.setenv("NGINX_APP_SERVERS", "10.0.0.11:8000,10.0.0.12:8000")
    monkeypatch.setenv("NGINX_WEBSOCKET_SERVERS", "10.0.0.11:8001,10.0.0.12:8001")
    # when
    call_command("render_deploy", "nginx", "--out", str(tmp_path))
    # then
    conf = (tmp_path / "nginx.conf").read_text()
    assert "server_name sms.example.org;" in conf
    assert "server 10.0.0.12:8000" in conf
    assert "server 10.0.0.12:8001" in conf
    assert "${" not in "".join(path.read_text() for path in tmp_path.iterdir())


def test_an_unknown_target_is_an_error_naming_the_targets(tmp_path):
    with pytest.raises(
        CommandError,
        match=r"unknown target 'apache'; one of: nginx, keepalived, pgbouncer, k8s, systemd, redis, patroni",
    ):
        call_command("render_deploy", "apache", "--out", str(tmp_path))


def test_a_bad_value_is_an_error_naming_its_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("NGINX_SERVER_NAME", "sms.example.org")
    monkeypatch.setenv("NGINX_APP_SERVERS", "10.0.0.11:8000")
    monkeypatch.setenv("NGINX_WEBSOCKET_SERVERS", "10.0.0.11:8001")
    monkeypatch.setenv("NGINX_HTTPS_PORT", "four-four-three")
    with pytest.raises(CommandError, match="NGINX_HTTPS_PORT"):
        call_command("render_deploy", "nginx", "--out", str(tmp_path))


def test_bad_arguments_exit_non_zero_with_one_line():
    # when
    result = run_script("manage.py", "render_deploy", "pgbouncer")
    # then
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["CommandError: --out FOLDER is required"]


@pytest.mark.parametrize(
    ("target", "variables"),
    [
        ("pgbouncer", "PG_PRIMARY_HOST, DB_REPLICA_HOST, PGBOUNCER_AUTH_FILE"),
        ("systemd", "DEPLOY_GUNICORN_BIND, DEPLOY_LIVE_BIND"),
        (
            "k8s",
            "DEPLOY_IMAGE, DEPLOY_NAMESPACE, DEPLOY_INGRESS_PROXIES, DEPLOY_PGBOUNCER_IMAGE, "
            "DEPLOY_PGBOUNCER_EXPORTER_IMAGE",
        ),
        ("nginx", "NGINX_SERVER_NAME, NGINX_APP_SERVERS, NGINX_WEBSOCKET_SERVERS"),
    ],
)
def test_a_production_template_with_a_missing_variable_exits_non_zero_naming_it(tmp_path, target, variables):
    # given an environment without the values only the deployment knows (the local cluster's
    # ports, read from .cluster/cluster.env, are still there: they must not fill the gap)
    env = {
        name: value
        for name, value in os.environ.items()
        if name
        not in {
            *selectors.REQUIRED.values(),
            "NGINX_SERVER_NAME",
            "NGINX_APP_SERVERS",
            "NGINX_WEBSOCKET_SERVERS",
        }
    }
    # when
    result = run_script("manage.py", "render_deploy", target, "--out", str(tmp_path / "out"), env=env)
    # then one line names every variable to set, and nothing was written
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"CommandError: set {variables} in the environment: production values are never guessed"
    ]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*"))


def test_a_variable_set_to_an_empty_string_is_missing(tmp_path):
    with (
        override_settings(
            DEPLOY_IMAGE="",
            DEPLOY_NAMESPACE="sms-prod",
            DEPLOY_INGRESS_PROXIES="10.244.250.0/26",
            DEPLOY_PGBOUNCER_IMAGE=PGBOUNCER_IMAGE,
            DEPLOY_PGBOUNCER_EXPORTER_IMAGE=EXPORTER_IMAGE,
        ),
        pytest.raises(CommandError, match=r"set DEPLOY_IMAGE in the environment"),
    ):
        call_command("render_deploy", "k8s", "--out", str(tmp_path))
