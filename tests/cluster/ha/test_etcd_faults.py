"""etcd members SIGKILLed under a steady API load: a lost quorum does not demote a healthy leader
(Patroni's failsafe mode), and no request fails. One lost member, in the proof's form, is in
test_component_faults.py."""

import signal
import time

import pytest

from deploy.local import cluster
from deploy.local.cluster import patroni
from tests.cluster.ha.conftest import ApiLoad, full_redundancy, messages_missing

pytestmark = pytest.mark.cluster

DOWN_FOR = 20.0  # longer than Patroni's ttl (10 s): a leader without failsafe would have demoted


def _kill_and_restore(cfg, names: list[str], api_load) -> tuple[ApiLoad, dict[str, str], dict[str, str]]:
    roles = full_redundancy(cfg)
    load = api_load()
    time.sleep(3.0)
    for name in names:
        cluster.signal_service(name, signal.SIGKILL, cfg)
    killed_at = time.monotonic()
    during: dict[str, str] = {}
    while time.monotonic() - killed_at < DOWN_FOR:
        time.sleep(1.0)
        during = {name: str(role) for name, role in patroni.roles(cfg).items()}
        assert during == roles, f"roles changed {time.monotonic() - killed_at:.1f} s after the kill: {during}"
    for name in names:
        cluster.start_service(cluster.services(cfg)[name], cfg)
    after = full_redundancy(cfg)
    time.sleep(2.0)
    load.stop()
    return load, roles, after


def test_etcd_quorum_lost_keeps_the_leader_taking_writes(cluster_settings, api_load, exclusive_database):
    # given full redundancy and a steady load; when two of the three etcd members are killed
    load, before, after = _kill_and_restore(cluster_settings, ["etcd1", "etcd3"], api_load)
    # then the leader stayed leader (failsafe mode), no request failed, nothing was lost
    print(
        f"\netcd quorum lost {DOWN_FOR:.0f} s: {len(load.of('write'))} writes, {len(load.of('read'))} reads"
    )
    assert load.failed("write") == [] and load.failed("read") == []
    assert after == before
    assert messages_missing(cluster_settings, load.acknowledged_writes()) == []
    leader = next(name for name, role in before.items() if role == patroni.LEADER)
    assert "failsafe" in (cluster_settings.log_dir / f"{leader}.log").read_text()[-2_000_000:]
