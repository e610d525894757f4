"""The active edge SIGKILLed under a steady API load through the virtual address (ADR 0020): its
NGINX (master and workers), or its keepalived. The other edge takes the address within the
bound, no acknowledged write is lost, and the cluster tooling brings the pair back."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.exactly_once import key_prefix
from bench.faults import FAULTS, wait_delivered
from deploy.local import cluster
from deploy.local.cluster.edge import INSIDE_LINK
from tests.cluster.ha.proof import sends_deadline
from tests.cluster.procs import child_pids

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]

DOWN_FOR = 8.0
# The bound for the active NGINX: requests fail for at most this long in total.
FAILING_BOUND = 2.0
REJOIN_WITHIN = 60.0


def edge_pair(cfg: cluster.Settings, timeout: float = 60.0) -> dict[str, str]:
    """Wait until one keepalived is MASTER and the other BACKUP; return the state of each."""
    deadline = time.monotonic() + timeout
    while True:
        roles = cluster.edge_roles(cfg, cluster.services(cfg))
        if sorted(map(str, roles.values())) == ["BACKUP", "MASTER"]:
            return {name: str(role) for name, role in roles.items()}
        assert time.monotonic() < deadline, f"no MASTER and BACKUP after {timeout:.0f} s: {roles}"
        time.sleep(0.2)


def holds_address(cfg: cluster.Settings, edge: str) -> bool:
    net = cluster.EdgeNetwork.of(cfg)
    shown = subprocess.run(
        ["ip", "-n", net.namespace(edge), "-o", "-4", "addr", "show", "dev", INSIDE_LINK],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return f" {net.vip}/" in shown


def kill_group(cfg: cluster.Settings, name: str) -> set[int]:
    """SIGKILL a process with its children (NGINX's workers, keepalived's VRRP process); they
    share its process group. Return every PID that was killed."""
    pid = cluster.recorded_pid(cluster.services(cfg)[name], cfg)
    assert pid is not None, f"{name} is not running"
    pids = {pid} | child_pids(pid)
    assert len(pids) > 1, f"{name} has no children: {pids}"
    os.killpg(pid, signal.SIGKILL)
    return pids


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def restore_with_the_tooling() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "deploy.local.cluster", "up"],
        capture_output=True, text=True, timeout=600, cwd=cluster.REPO, env=dict(os.environ),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


@pytest.mark.parametrize("process", ["nginx", "keepalived"])
def test_the_active_edge_killed_moves_the_address_within_the_bound(
    process, cluster_settings, api_load, exclusive_app_servers
):
    cfg = cluster_settings
    # given both edges up: one MASTER, one BACKUP, and a steady load through the virtual address
    roles = edge_pair(cfg)
    active = next(name for name, role in roles.items() if role == "MASTER").removeprefix("keepalived-")
    standby = next(edge for edge in ("a", "b") if edge != active)
    assert holds_address(cfg, active)
    load = api_load()
    time.sleep(3.0)
    assert load.failed("read") == load.failed("write") == []
    # when the active edge's NGINX (master and workers) or its keepalived is SIGKILLed, and left down
    killed = kill_group(cfg, f"{process}-{active}")
    killed_at = time.monotonic()
    time.sleep(DOWN_FOR)
    # then the other edge holds the address and took the load within the bound
    assert [pid for pid in killed if alive(pid)] == []
    roles_while_down = cluster.edge_roles(cfg, cluster.services(cfg))
    assert roles_while_down[f"keepalived-{standby}"] == "MASTER"
    assert holds_address(cfg, standby)
    for kind in ("read", "write"):
        assert load.unavailable_for(kind, killed_at) <= FAILING_BOUND, load.failed(kind)[-5:]
        assert load.back_after(kind, killed_at) <= FAILING_BOUND
    # when the cluster tooling restores what is missing
    restore_at = time.monotonic()
    restore_with_the_tooling()
    # then the pair is back within the bound, the restored edge as BACKUP (no preemption, so no
    # second interruption), and nothing failed after the failover
    rejoined = edge_pair(cfg, timeout=REJOIN_WITHIN - (time.monotonic() - restore_at))
    assert rejoined == {f"keepalived-{standby}": "MASTER", f"keepalived-{active}": "BACKUP"}
    time.sleep(2.0)
    load.stop()
    late = [a for a in load.failed("read") + load.failed("write") if a.sent >= killed_at + FAILING_BOUND]
    assert late == []
    # and no acknowledged write was lost, none reached the provider twice, and every one was sent
    # within two sweep intervals of the kill
    written = load.acknowledged_writes()
    assert written
    deadline = killed_at + sends_deadline(FAULTS["active-nginx"])
    found, _ = wait_delivered(cfg, written, key_prefix=key_prefix(), deadline=deadline)
    assert found.problems == []
