"""Fault tests pause lock nodes; other suites on this machine do too. Start each test with
all three nodes up, so a test only ever sees the faults it made itself."""

import pytest
import redis

from deploy.local import cluster
from tests.support import wait_until

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
    table = cluster.services(cluster_settings)
    wait_until(
        lambda: all(_answering(port) for port in ports),
        timeout=30,
        interval=0.2,
        message=lambda: (
            "lock nodes not all answering, their PIDs: "
            + str({name: cluster.recorded_pid(table[name], cluster_settings) for name in LOCK_NODES})
        ),
    )
