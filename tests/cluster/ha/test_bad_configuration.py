"""Bad configuration stops ``cluster up`` with one line naming it, and leaves nothing running: an
unreachable etcd, or a state folder holding a database from before Patroni."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.local import cluster
from deploy.local.host import free_port

pytestmark = pytest.mark.cluster


def _own_cluster(state: Path, etcd: str) -> dict[str, str]:
    """The environment of a cluster of its own: state folder, etcd, every port."""
    ports = iter(range(free_port(range(30500, 31500)), 32000))
    return {
        **os.environ,
        "CLUSTER_STATE_DIR": str(state),
        "ETCD_HOSTS": etcd,
        "PG_PRIMARY_PORT": str(next(ports)),
        "PG_REPLICA_PORT": str(next(ports)),
        "PG_MEMBER_PORTS": f"{next(ports)},{next(ports)}",
        "PATRONI_REST_PORTS": f"{next(ports)},{next(ports)}",
        "PGBOUNCER_PORT": str(next(ports)),
        "PGBOUNCER2_PORT": str(next(ports)),
        "HAPROXY2_PORTS": f"{next(ports)},{next(ports)}",
        "LOCK_REDIS_PORTS": f"{next(ports)},{next(ports)},{next(ports)}",
        "BROKER_REDIS_PORT": str(next(ports)),
        "APP_PORTS": f"{next(ports)},{next(ports)}",
        "LIVE_PORTS": f"{next(ports)},{next(ports)}",
        "NGINX_HTTP_PORT": str(next(ports)),
        "NGINX_HTTPS_PORT": str(next(ports)),
    }


def _up_infra(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deploy.local.cluster", "up", "--infra"],
        capture_output=True, text=True, timeout=120, cwd=cluster.REPO, env=env,
    )  # fmt: skip


def _running(env: dict[str, str]) -> list[str]:
    cfg = cluster.Settings(state_dir=Path(env["CLUSTER_STATE_DIR"]), etcd_hosts=[env["ETCD_HOSTS"]])
    return [name for name, service in cluster.services(cfg).items() if cluster.recorded_pid(service, cfg)]


def test_an_unreachable_etcd_stops_up_with_one_line_and_nothing_half_started(tmp_path):
    # given a cluster of its own (state folder, ports) whose etcd is an address nothing answers on
    nowhere = free_port()
    env = _own_cluster(tmp_path / "state", f"127.0.0.1:{nowhere}")
    # when the infrastructure is started
    result = _up_infra(env)
    # then it fails with one line naming etcd and the address
    errors = result.stderr.strip().splitlines()
    assert result.returncode == 1, result.stdout + result.stderr
    assert len(errors) == 1, result.stderr
    assert f"etcd has no quorum: 127.0.0.1:{nowhere} unreachable" in errors[0]
    # and no process of that cluster runs
    assert _running(env) == []


def test_a_database_from_before_patroni_stops_up_with_one_line(tmp_path):
    # given a state folder with the single-primary cluster's data folder
    (tmp_path / "state" / "pg" / "primary").mkdir(parents=True)
    (tmp_path / "state" / "pg" / "primary" / "PG_VERSION").write_text("15\n")
    env = _own_cluster(tmp_path / "state", f"127.0.0.1:{free_port()}")
    # when the infrastructure is started
    result = _up_infra(env)
    # then it refuses at once, naming the folder and what to do, and starts nothing
    errors = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(errors) == 1, result.stdout + result.stderr
    assert "from before Patroni" in errors[0] and "move-onto-patroni.md" in errors[0]
    assert _running(env) == []
