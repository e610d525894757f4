"""The PgBouncer template, rendered by ``render_deploy`` with an auth file from the database, serves."""

import dataclasses
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from django.core.management import call_command
from django.test import override_settings

from deploy.local import cluster
from deploy.local.cluster import REPO
from deploy.local.cluster.patroni import leader_port
from deploy.local.cluster.pgbouncer import prepare_pgbouncer
from deploy.local.host import free_port
from tests.integration.deploy.pgbouncer_process import (
    pgbouncer_log,
    postgres_readable_dir,
    running_pgbouncer,
)

pytestmark = pytest.mark.integration


def _superuser_dsn(cfg: cluster.Settings) -> str:
    # The cluster's superuser logs in by peer authentication over the unix socket only, on the
    # member that leads now (the primary port is HAProxy's, a TCP port).
    return f"host={cfg.run_dir} port={leader_port(cfg)} user={cluster.PG_USER} dbname=postgres"


def _auth_file_command(cfg: cluster.Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """``manage.py pgbouncer_auth_file`` as the postgres OS user, the way an operator runs it."""
    return subprocess.run(
        [sys.executable, "-B", str(REPO / "manage.py"), "pgbouncer_auth_file", *args],
        user=cluster.PG_USER,
        cwd=REPO,
        env={"HOME": "/", "DJANGO_SETTINGS_MODULE": "config.settings.local", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_auth_file_command_writes_scram_secrets_for_the_app_and_console_roles(cluster_settings):
    with postgres_readable_dir() as folder:
        # given
        out = folder / "userlist.txt"
        # when
        result = _auth_file_command(
            cluster_settings, "--out", str(out), "--dsn", _superuser_dsn(cluster_settings)
        )
        # then
        assert result.returncode == 0, result.stderr
        lines = out.read_text().splitlines()
        roles = [line.split('"')[1] for line in lines]
        assert roles == sorted([cluster_settings.db_user, "pgbouncer_admin", "pgbouncer_stats"])
        assert all('" "SCRAM-SHA-256$4096:' in line for line in lines)
        assert out.stat().st_mode & 0o777 == 0o600


def test_the_auth_file_command_without_a_superuser_dsn_fails_in_one_line(cluster_settings):
    with postgres_readable_dir() as folder:
        result = _auth_file_command(cluster_settings, "--out", str(folder / "userlist.txt"), "--dsn", "")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "CommandError: give a superuser DSN with --dsn or PGBOUNCER_AUTH_DSN"
    ]


def test_rendered_pgbouncer_starts_and_serves_the_primary_and_the_replica(cluster_settings):
    cfg = cluster_settings
    port = free_port()
    with postgres_readable_dir() as folder:
        # given: an auth file read from the database and the template rendered for our port
        auth_file = folder / "userlist.txt"
        assert _auth_file_command(cfg, "--out", str(auth_file), "--dsn", _superuser_dsn(cfg)).returncode == 0
        with override_settings(
            DEPLOY_PG_PRIMARY_HOST="127.0.0.1",
            DEPLOY_PG_PRIMARY_PORT=cfg.pg_primary_port,
            DEPLOY_PG_REPLICA_HOST="127.0.0.1",
            DEPLOY_PG_REPLICA_PORT=cfg.pg_replica_port,
            DEPLOY_PGBOUNCER_PORT=port,
            DEPLOY_PGBOUNCER_AUTH_FILE=str(auth_file),
            # the cluster's PostgreSQL is on loopback and has no certificate: the cluster's modes
            DEPLOY_PGBOUNCER_SERVER_TLS_SSLMODE="prefer",
            DEPLOY_PGBOUNCER_SERVER_TLS_CA_FILE="",
        ):
            call_command("render_deploy", "pgbouncer", "--out", str(folder))
        ini = folder / "pgbouncer.ini"
        # when
        with running_pgbouncer(ini, port=port, folder=folder):
            connect = {"host": "127.0.0.1", "port": port, "user": cfg.db_user, "password": cfg.db_password}
            with psycopg.connect(
                dbname=cfg.db_name, autocommit=True, prepare_threshold=None, **connect
            ) as db:
                (primary_in_recovery,) = db.execute("SELECT pg_is_in_recovery()").fetchone() or (None,)
            replica_db = f"{cfg.db_name}_replica"
            with psycopg.connect(dbname=replica_db, autocommit=True, prepare_threshold=None, **connect) as db:
                (replica_in_recovery,) = db.execute("SELECT pg_is_in_recovery()").fetchone() or (None,)
            console = {**connect, "user": "pgbouncer_admin", "dbname": "pgbouncer"}
            with psycopg.connect(autocommit=True, prepare_threshold=None, **console) as admin:
                config = {row[0]: row[1] for row in admin.execute("SHOW CONFIG").fetchall()}
        # then
        assert (primary_in_recovery, replica_in_recovery) == (False, True), pgbouncer_log(folder)
        assert config["pool_mode"] == "transaction"
        assert (config["default_pool_size"], config["max_client_conn"]) == ("30", "1000")
        assert config["idle_transaction_timeout"] == "300"
        assert Path(config["auth_file"]) == auth_file


def test_the_local_clusters_pgbouncer_preparation_renders_a_pgbouncer_that_serves(cluster_settings):
    port = free_port()
    with postgres_readable_dir() as folder:
        # given: a cluster state folder of our own that reaches the running primary's socket
        (folder / "run").symlink_to(cluster_settings.run_dir)
        cfg = dataclasses.replace(cluster_settings, state_dir=folder, pgbouncer_port=port)
        # when: the step `make up` runs before it starts PgBouncer
        prepare_pgbouncer("pgbouncer", port, [cfg.pg_primary_port, cfg.pg_replica_port])(cfg)
        # then
        ini = folder / "pgbouncer" / "pgbouncer.ini"
        with running_pgbouncer(ini, port=port, folder=folder):
            kwargs = {"host": "127.0.0.1", "port": port, "user": cfg.db_user, "password": cfg.db_password}
            with psycopg.connect(dbname=cfg.db_name, autocommit=True, prepare_threshold=None, **kwargs) as db:
                assert db.execute("SELECT 1").fetchone() == (1,), pgbouncer_log(folder)
