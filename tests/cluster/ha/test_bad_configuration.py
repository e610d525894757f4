"""An unreachable etcd stops ``cluster up`` with one line naming it, and leaves nothing running."""

import os
import subprocess
import sys

import pytest

from deploy.local import cluster
from deploy.local.host import free_port

pytestmark = pytest.mark.cluster


def test_an_unreachable_etcd_stops_up_with_one_line_and_nothing_half_started(tmp_path):
    # given a cluster of its own (state folder, ports) whose etcd is an address nothing answers on
    nowhere = free_port()
    ports = iter(range(free_port(range(30500, 31500)), 32000))
    env = {
        **os.environ,
        "CLUSTER_STATE_DIR": str(tmp_path / "state"),
        "ETCD_HOSTS": f"127.0.0.1:{nowhere}",
        "PG_PRIMARY_PORT": str(next(ports)),
        "PG_REPLICA_PORT": str(next(ports)),
        "PG_MEMBER_PORTS": f"{next(ports)},{next(ports)}",
        "PATRONI_REST_PORTS": f"{next(ports)},{next(ports)}",
        "PGBOUNCER_PORT": str(next(ports)),
        "LOCK_REDIS_PORTS": f"{next(ports)},{next(ports)},{next(ports)}",
        "BROKER_REDIS_PORT": str(next(ports)),
        "APP_PORTS": f"{next(ports)},{next(ports)}",
        "LIVE_PORTS": f"{next(ports)},{next(ports)}",
        "NGINX_HTTP_PORT": str(next(ports)),
        "NGINX_HTTPS_PORT": str(next(ports)),
    }
    # when the infrastructure is started
    result = subprocess.run(
        [sys.executable, "-m", "deploy.local.cluster", "up", "--infra"],
        capture_output=True, text=True, timeout=120, cwd=cluster.REPO, env=env,
    )  # fmt: skip
    # then it fails with one line naming etcd and the address
    errors = result.stderr.strip().splitlines()
    assert result.returncode == 1, result.stdout + result.stderr
    assert len(errors) == 1, result.stderr
    assert f"etcd has no quorum: 127.0.0.1:{nowhere} unreachable" in errors[0]
    # and no process of that cluster runs
    cfg = cluster.Settings(state_dir=tmp_path / "state", etcd_hosts=[env["ETCD_HOSTS"]])
    running = [name for name, service in cluster.services(cfg).items() if cluster.recorded_pid(service, cfg)]
    assert running == []
