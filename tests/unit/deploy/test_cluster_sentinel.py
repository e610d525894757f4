"""The local cluster's broker under Sentinel: ports that follow the broker's, every link with its
own ACL user, and the app told where the Sentinels are (ADR 0019)."""

import dataclasses

import pytest

from deploy.local import cluster
from deploy.local.cluster import sentinel

pytestmark = pytest.mark.unit


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    for name in (
        "BROKER_REDIS_PORT",
        "BROKER_REDIS_REPLICA_PORT",
        "SENTINEL_PORTS",
        "BROKER_SENTINEL_MASTER",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BROKER_REDIS_PORT", "27000")
    return dataclasses.replace(cluster.Settings(), state_dir=tmp_path)


def test_the_replica_and_the_sentinels_follow_the_brokers_port_unless_set(cfg, monkeypatch):
    assert (cfg.broker_replica_port, cfg.sentinel_ports) == (27001, [27002, 27003, 27004])
    monkeypatch.setenv("SENTINEL_PORTS", "27100,27101,27102")
    assert cluster.Settings().sentinel_ports == [27100, 27101, 27102]


def test_the_app_is_told_the_sentinels_and_the_master_name_not_a_node(cfg):
    env = cfg.app_env()
    assert env["BROKER_SENTINELS"] == "127.0.0.1:27002,127.0.0.1:27003,127.0.0.1:27004"
    assert env["BROKER_SENTINEL_MASTER"] == "broker"
    assert "BROKER_REDIS_URL" not in env


def test_each_sentinel_monitors_the_master_with_its_own_users_and_no_default_one(cfg):
    # given no Sentinel or node running (a first start)
    conf = sentinel._sentinel_conf(cfg, 27002)
    lines = conf.splitlines()
    # then it watches the first node, logs in to the nodes and to its peers as their users
    assert "user default off" in lines
    assert "sentinel monitor broker 127.0.0.1 27000 2" in lines
    assert "sentinel auth-user broker sentinel" in lines
    assert f"sentinel auth-pass broker {cfg.redis_secret('sentinel')}" in lines
    assert "sentinel sentinel-user sentinel-peer" in lines
    assert f"sentinel down-after-milliseconds broker {sentinel.DOWN_AFTER_MS}" in lines
    # and the app's user there may read, never steer
    [app] = [line for line in lines if line.startswith("user app ")]
    assert "+sentinel|get-master-addr-by-name" in app and "failover" not in app and "+@all" not in app


def test_a_first_start_makes_the_second_node_the_firsts_replica(cfg):
    first = sentinel._node_conf(cfg, "redis-broker").splitlines()
    second = sentinel._node_conf(cfg, "redis-broker2").splitlines()
    assert not any(line.startswith("replicaof") for line in first)
    assert "replicaof 127.0.0.1 27000" in second
    assert "masteruser replication" in second
    assert any(line.startswith("user replication ") and "+psync" in line for line in second)
