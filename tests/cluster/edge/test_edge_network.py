"""The edge pair's network (deploy/local/cluster/edge.py): made once however often it is asked
for, removed entirely, and a namespace that cannot be made is one line naming it with nothing
of the network left behind. Each test uses a network of its own, never the running cluster's."""

import ipaddress
import socket
import subprocess
from pathlib import Path

import pytest

from deploy.local import cluster
from deploy.local.cluster.edge import ensure_edge_network, remove_edge_network

pytestmark = pytest.mark.cluster

NETNS_DIR = Path("/run/netns")


@pytest.fixture
def own_network(tmp_path):
    """Settings whose edge network is the running cluster's subnet + 2 and a prefix of its own."""
    main = cluster.Settings()
    subnet = ipaddress.IPv4Network(main.edge_subnet)
    cfg = cluster.Settings(
        state_dir=tmp_path / "state",
        edge_netns_prefix=f"{main.edge_netns_prefix[:11]}t",
        edge_subnet=f"{subnet.network_address + 512}/24",
    )
    yield cfg
    remove_edge_network(cfg)


def _namespaces() -> set[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in listed.splitlines() if line.strip()}


def _link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True, check=False).returncode == 0


def test_the_network_is_made_once_and_removed_entirely(own_network):
    # given
    net = cluster.EdgeNetwork.of(own_network)
    # when it is asked for twice
    ensure_edge_network(own_network)
    ensure_edge_network(own_network)
    # then both namespaces reach the host over the bridge
    with socket.socket() as listener:
        listener.bind((net.host_address, 0))
        listener.listen()
        port = listener.getsockname()[1]
        for edge in ("a", "b"):
            connect = ["ip", "netns", "exec", net.namespace(edge), "bash", "-c",
                       f"exec 3<>/dev/tcp/{net.host_address}/{port}"]  # fmt: skip
            assert subprocess.run(connect, capture_output=True, timeout=10, check=False).returncode == 0, edge
    # when it is removed
    removed = remove_edge_network(own_network)
    # then nothing of it is left
    assert sorted(removed) == sorted([f"netns {net.namespace('a')}", f"netns {net.namespace('b')}",
                                      f"bridge {net.bridge}"])  # fmt: skip
    assert not {net.namespace("a"), net.namespace("b")} & _namespaces()
    assert not any(_link_exists(name) for name in (net.bridge, net.host_link("a"), net.host_link("b")))


def test_a_namespace_that_cannot_be_made_is_named_and_nothing_is_left(own_network):
    # given a file squatting the second namespace's name (not a namespace: it cannot be entered)
    net = cluster.EdgeNetwork.of(own_network)
    NETNS_DIR.mkdir(parents=True, exist_ok=True)
    squatter = NETNS_DIR / net.namespace("b")
    squatter.write_text("")
    try:
        # when / then
        with pytest.raises(
            cluster.ClusterError, match=rf"^network namespace {net.namespace('b')} cannot be made: "
        ):
            ensure_edge_network(own_network)
        assert net.namespace("a") not in _namespaces()
        assert not _link_exists(net.bridge)
    finally:
        squatter.unlink(missing_ok=True)


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("edge_netns_prefix", "a-prefix-too-long", "EDGE_NETNS_PREFIX"),
        ("edge_subnet", "10.1.2.0/28", "EDGE_SUBNET"),
    ],
)
def test_a_bad_edge_setting_is_one_line_naming_its_variable(tmp_path, field, value, named):
    cfg = cluster.Settings(state_dir=tmp_path, **{field: value})
    with pytest.raises(cluster.ClusterError, match=rf"^{named}="):
        cluster.EdgeNetwork.of(cfg)
