"""``python -m deploy.local.cluster status`` shows each PostgreSQL member's current role."""

import re
import subprocess
import sys

import pytest

from deploy.local import cluster
from deploy.local.cluster import patroni, sentinel
from tests.cluster.ha.conftest import full_redundancy

pytestmark = pytest.mark.cluster


def test_status_shows_one_leader_and_one_replica_as_patroni_sees_them(cluster_settings):
    # given full redundancy
    roles = full_redundancy(cluster_settings)
    # when the status is printed
    result = subprocess.run(
        [sys.executable, "-m", "deploy.local.cluster", "status"],
        capture_output=True, text=True, timeout=60, cwd=cluster.REPO, check=True,
    )  # fmt: skip
    # then each member's line carries the role its Patroni reports
    shown = dict(re.findall(r"^(pg\d+)\s.*\brole=(\w+)$", result.stdout, re.MULTILINE))
    assert shown == roles
    assert sorted(shown.values()) == [patroni.LEADER, patroni.REPLICA]


def test_status_lists_both_pgbouncers_and_both_haproxys_running(cluster_settings):
    # when the status is printed
    result = subprocess.run(
        [sys.executable, "-m", "deploy.local.cluster", "status"],
        capture_output=True, text=True, timeout=60, cwd=cluster.REPO, check=True,
    )  # fmt: skip
    # then each PgBouncer and the HAProxy beside it has a running line with its port (ADR 0018)
    running = dict(re.findall(r"^(\S+)\s+running pid \d+\s+:(\d+)", result.stdout, re.MULTILINE))
    cfg = cluster_settings
    assert {name: running.get(name) for name in ("haproxy", "pgbouncer", "haproxy2", "pgbouncer2")} == {
        "haproxy": str(cfg.pg_primary_port),
        "pgbouncer": str(cfg.pgbouncer_port),
        "haproxy2": str(cfg.haproxy2_ports[0]),
        "pgbouncer2": str(cfg.pgbouncer2_port),
    }


def test_status_shows_the_broker_master_and_replica_as_the_nodes_report_them(cluster_settings):
    # when the status is printed
    result = subprocess.run(
        [sys.executable, "-m", "deploy.local.cluster", "status"],
        capture_output=True, text=True, timeout=60, cwd=cluster.REPO, check=True,
    )  # fmt: skip
    # then each broker node's line carries the role it reports (ROLE), one master and one replica
    shown = dict(re.findall(r"^(redis-broker\d*)\s.*\brole=(\w+)$", result.stdout, re.MULTILINE))
    assert shown == sentinel.broker_roles(cluster_settings)
    assert sorted(shown.values()) == [sentinel.MASTER, sentinel.REPLICA]
    # and every Sentinel runs
    running = re.findall(r"^(redis-sentinel-\d+)\s+running pid", result.stdout, re.MULTILINE)
    assert running == sentinel.sentinel_names(cluster_settings)


def test_status_shows_one_master_and_one_backup_edge_as_keepalived_reports_them(cluster_settings):
    # given both edges up (keepalived's notify script writes each one's VRRP state)
    roles = cluster.edge_roles(cluster_settings, cluster.services(cluster_settings))
    # when the status is printed
    result = subprocess.run(
        [sys.executable, "-m", "deploy.local.cluster", "status"],
        capture_output=True, text=True, timeout=60, cwd=cluster.REPO, check=True,
    )  # fmt: skip
    # then each keepalived's line carries its state: one MASTER, one BACKUP
    shown = dict(re.findall(r"^(keepalived-[ab])\s.*\brole=(\w+)$", result.stdout, re.MULTILINE))
    assert shown == roles
    assert sorted(shown.values()) == ["BACKUP", "MASTER"]
