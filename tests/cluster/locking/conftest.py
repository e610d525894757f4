"""Fault tests pause lock nodes; other suites on this machine do too. Start each test with
all three nodes up, so a test only ever sees the faults it made itself."""

import time

import pytest
import redis

from deploy.local import cluster

LOCK_NODES = ("redis-lock-1", "redis-lock-2", "redis-lock-3")


def _answering(port: int) -> bool:
    url = cluster.Settings().redis_url(port)
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=0.2, socket_connect_timeout=0.2).ping())
    except redis.RedisError:
        return False


@pytest.fixture(autouse=True)
def all_lock_nodes_up(cluster_settings: cluster.Settings) -> None:
    ports = cluster_settings.lock_redis_ports
    deadline = time.monotonic() + 30
    while not all(_answering(port) for port in ports):
        if time.monotonic() > deadline:
            table = cluster.services(cluster_settings)
            states = {name: cluster.recorded_pid(table[name], cluster_settings) for name in LOCK_NODES}
            pytest.fail(f"lock nodes not all answering after 30 s: {states}")
        time.sleep(0.2)
