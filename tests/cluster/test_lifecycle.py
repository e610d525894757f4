"""Starting and stopping: a busy port is named, and ``down`` leaves no process behind.

These run a second, small cluster (Redis, one app server with worker and beat, both NGINX of the
edge pair) on other ports, in a temporary folder and an edge network of its own, so the main
cluster keeps serving the other tests.
"""

import ipaddress
import socket
import subprocess
from pathlib import Path

import pytest

from deploy.local import cluster
from deploy.local.cluster.cli import ensure_dirs
from tests.cluster.procs import child_pids

pytestmark = pytest.mark.cluster


# The side cluster's ports: the main cluster's + 100, so that two clusters on other ports (each
# with its own side cluster) never meet.
SIDE_OFFSET = 100


@pytest.fixture
def side_cluster(tmp_path):
    main = cluster.Settings()
    return cluster.Settings(
        state_dir=tmp_path / "side",
        lock_redis_ports=[port + SIDE_OFFSET for port in main.lock_redis_ports],
        broker_redis_port=main.broker_redis_port + SIDE_OFFSET,
        broker_replica_port=main.broker_replica_port + SIDE_OFFSET,
        sentinel_ports=[port + SIDE_OFFSET for port in main.sentinel_ports],
        app_ports=[main.app_ports[0] + SIDE_OFFSET],
        nginx_http_port=main.nginx_http_port + SIDE_OFFSET,
        nginx_https_port=main.nginx_https_port + SIDE_OFFSET,
        # Its own edge network too: the next /24 after the main cluster's, a prefix of its own.
        edge_netns_prefix=f"{main.edge_netns_prefix[:11]}s",
        edge_subnet=str(ipaddress.IPv4Network(main.edge_subnet).network_address + 256) + "/24",
    )


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def test_a_busy_port_stops_start_up_with_its_variable_named(side_cluster):
    # given
    table = cluster.services(side_cluster)
    side_cluster.pid_dir.mkdir(parents=True)
    side_cluster.log_dir.mkdir(parents=True)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", side_cluster.broker_redis_port))
        squatter.listen()
        # when / then
        busy = rf"port {side_cluster.broker_redis_port} .* set BROKER_REDIS_PORT"
        with pytest.raises(cluster.ClusterError, match=busy):
            cluster.start_service(table["redis-broker"], side_cluster)


def test_down_leaves_none_of_the_started_processes_alive(side_cluster):
    # given
    ensure_dirs(side_cluster)
    table = cluster.services(side_cluster)
    names = [n for n in table if n.startswith(("redis-", "app", "worker-", "beat-", "nginx"))]
    pids = set()
    try:
        for name in names:
            pids.add(cluster.start_service(table[name], side_cluster))
        for pid in list(pids):
            pids |= child_pids(pid)
        assert len(pids) > len(names)  # gunicorn, Celery and NGINX have children too
    finally:
        # when
        cluster.down(side_cluster)
    # then
    assert [pid for pid in pids if _alive(pid)] == []
    assert list(side_cluster.pid_dir.glob("*.pid")) == []
    # and its edge network (namespaces, links, bridge) is gone too
    net = cluster.EdgeNetwork.of(side_cluster)
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert net.namespace("a") not in namespaces and net.namespace("b") not in namespaces
    assert (
        subprocess.run(["ip", "link", "show", net.bridge], capture_output=True, check=False).returncode != 0
    )
