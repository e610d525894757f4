"""The edge pair: two NGINX, each with a keepalived, in network namespaces on a bridge (ADR 0020).

Two hosts' worth of edge on one machine. Each edge is a network namespace (``<prefix>-a``,
``<prefix>-b``) joined by a veth pair to a bridge (``<prefix>-br``) that also carries the host's
address; the app servers listen on that address as well as loopback. keepalived in each
namespace holds the virtual address by VRRP (unicast peers) and goes to FAULT when its own
NGINX stops answering, so the address moves to the other edge.

Addresses come from ``EDGE_SUBNET`` (a /24 or larger, used only inside what this module makes):

=========  =====================================================================
``.1``     the host's end of the bridge: the app servers, and the operator's client (internal)
``.2``     edge ``a``
``.3``     edge ``b``
``.10``    the virtual address clients use (``EDGE_URL``)
``.128+``  outside clients that tests add on the bridge (not internal, own rate-limit buckets)
=========  =====================================================================

``ensure_edge_network`` makes whatever is missing (``up`` twice is safe) and
``remove_edge_network`` takes it all away again (``down``).
"""

from __future__ import annotations

import ipaddress
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from deploy.keepalived.render import KeepalivedValues, render_keepalived_files
from deploy.local.cluster.processes import Service, port_open, recorded_pid, stop_service, wait_stopped
from deploy.local.cluster.settings import EDGES, ClusterError, EdgeNetwork, Settings

INSIDE_LINK = "edge0"  # the namespace's end of its veth pair
# Edge "a" starts first and is preferred at the first election; with nopreempt the address
# then stays wherever it is until that edge fails.
PRIORITIES = {"a": 150, "b": 100}


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise ClusterError(f"ip {' '.join(args)}: {(result.stderr or result.stdout).strip()}")
    return result


def _link_exists(name: str, netns: str | None = None) -> bool:
    return _ip(*(["-n", netns] if netns else []), "link", "show", name, check=False).returncode == 0


def _namespaces() -> set[str]:
    return {line.split()[0] for line in _ip("netns", "list").stdout.splitlines() if line.strip()}


def _has_address(link: str, address: str, netns: str | None = None) -> bool:
    shown = _ip(*(["-n", netns] if netns else []), "-o", "-4", "addr", "show", "dev", link).stdout
    return f" {address}/" in shown


def ensure_edge_network(cfg: Settings) -> EdgeNetwork:
    """Make the bridge, both namespaces and their links if missing; return the network.

    A part that cannot be made raises one line naming it, and what this call made goes again.
    """
    net = EdgeNetwork.of(cfg)
    length = net.subnet.prefixlen
    made_anything = False
    try:
        if not _link_exists(net.bridge):
            made_anything = True
            _ip("link", "add", net.bridge, "type", "bridge")
        if not _has_address(net.bridge, net.host_address):
            _ip("addr", "add", f"{net.host_address}/{length}", "dev", net.bridge)
        _ip("link", "set", net.bridge, "up")
        existing = _namespaces()
        for edge in EDGES:
            try:
                made_anything |= _ensure_edge(net, edge, existing)
            except ClusterError as error:
                raise ClusterError(
                    f"network namespace {net.namespace(edge)} cannot be made: {error}"
                ) from None
    except ClusterError:
        if made_anything:
            remove_edge_network(cfg)
        raise
    return net


def _ensure_edge(net: EdgeNetwork, edge: str, existing: set[str]) -> bool:
    """One edge's namespace and its link to the bridge; whether anything had to be made."""
    namespace, length = net.namespace(edge), net.subnet.prefixlen
    made = False
    if namespace not in existing:
        made = True
        _ip("netns", "add", namespace)
    _ip("-n", namespace, "link", "set", "lo", "up")
    if not _link_exists(INSIDE_LINK, namespace):
        made = True
        _ip("link", "del", net.host_link(edge), check=False)  # the host's half of an old pair
        _ip(
            "link",
            "add",
            net.host_link(edge),
            "type",
            "veth",
            "peer",
            "name",
            INSIDE_LINK,
            "netns",
            namespace,
        )
    _ip("link", "set", net.host_link(edge), "master", net.bridge)
    _ip("link", "set", net.host_link(edge), "up")
    if not _has_address(INSIDE_LINK, net.address(edge), namespace):
        _ip("-n", namespace, "addr", "add", f"{net.address(edge)}/{length}", "dev", INSIDE_LINK)
    _ip("-n", namespace, "link", "set", INSIDE_LINK, "up")
    return made


def remove_edge_network(cfg: Settings) -> list[str]:
    """Delete both namespaces (their links go with them) and the bridge; return what was removed."""
    net = EdgeNetwork.of(cfg)
    removed = []
    existing = _namespaces()
    # Each part goes even if another cannot: this also cleans up after a failed start.
    for edge in EDGES:
        if (
            net.namespace(edge) in existing
            and _ip("netns", "del", net.namespace(edge), check=False).returncode == 0
        ):
            removed.append(f"netns {net.namespace(edge)}")
        if _link_exists(net.host_link(edge)):
            _ip("link", "del", net.host_link(edge), check=False)
    if _link_exists(net.bridge) and _ip("link", "del", net.bridge, check=False).returncode == 0:
        removed.append(f"bridge {net.bridge}")
    return removed


def add_client_address(cfg: Settings, address: str) -> str:
    """Put an outside client's address on the bridge (tests bind their connections to it)."""
    net = ensure_edge_network(cfg)
    if ipaddress.IPv4Address(address) not in net.subnet:
        raise ClusterError(f"{address} is not in EDGE_SUBNET {net.subnet}")
    if not _has_address(net.bridge, address):
        _ip("addr", "add", f"{address}/32", "dev", net.bridge, check=False)  # a parallel run added it
    return address


def edge_folder(cfg: Settings, edge: str) -> Path:
    return cfg.state_dir / "nginx" / f"edge-{edge}"


def keepalived_config_file(cfg: Settings, edge: str) -> Path:
    return cfg.state_dir / "keepalived" / f"edge-{edge}" / "keepalived.conf"


def state_file(cfg: Settings, edge: str) -> Path:
    """Where keepalived's notify script writes this edge's VRRP state (MASTER, BACKUP, FAULT)."""
    return keepalived_config_file(cfg, edge).parent / "state"


def prepare_keepalived(edge: str) -> Callable[[Settings], None]:
    def make(cfg: Settings) -> None:
        net = ensure_edge_network(cfg)
        folder = keepalived_config_file(cfg, edge).parent
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o755)
        state_file(cfg, edge).unlink(missing_ok=True)
        # A keepalived that was SIGKILLed left the address on its link; the new one starts as
        # BACKUP and must not answer for it until it is elected.
        _ip("-n", net.namespace(edge), "addr", "del", f"{net.vip}/{net.subnet.prefixlen}", "dev", INSIDE_LINK,
            check=False)  # fmt: skip
        peer = next(other for other in EDGES if other != edge)
        render_keepalived_files(
            folder,
            KeepalivedValues(
                router_id=f"{net.prefix}-{edge}",
                interface=INSIDE_LINK,
                own_address=net.address(edge),
                peer_address=net.address(peer),
                virtual_ip=f"{net.vip}/{net.subnet.prefixlen}",
                priority=PRIORITIES[edge],
                check_port=cfg.nginx_https_port,
                state_file=state_file(cfg, edge),
                metrics_file=state_file(cfg, edge).with_name("edge_vrrp.prom"),
            ),
        )

    return make


def edge_roles(cfg: Settings, table: Mapping[str, Service]) -> dict[str, str | None]:
    """Each running keepalived's VRRP state as its notify script last wrote it; None if stopped."""
    roles: dict[str, str | None] = {}
    for edge in EDGES:
        name = f"keepalived-{edge}"
        running = recorded_pid(table[name], cfg) is not None
        path = state_file(cfg, edge)
        roles[name] = (path.read_text().strip() or None) if running and path.exists() else None
    return roles


def app_trust_env(cfg: Settings) -> dict[str, str]:
    """The app servers' view of the edge: clients name the virtual address as the host; both
    edges' addresses are proxies whose X-Forwarded-For is believed; only loopback and the
    host's bridge address are internal (an outside client on the bridge is not)."""
    net = EdgeNetwork.of(cfg)
    loopback = "127.0.0.0/8,::1/128"
    internal = f"{loopback},{net.host_address}/32"
    return {
        "DJANGO_ALLOWED_HOSTS": f"localhost,127.0.0.1,[::1],{net.vip}",
        "HEALTH_TRUSTED_PROXIES": f"{loopback},{net.address('a')}/32,{net.address('b')}/32",
        "HEALTH_DETAILED_ALLOWED_NETWORKS": internal,
        "METRICS_ALLOWED_NETWORKS": internal,
    }


def edge_network_exists(cfg: Settings) -> bool:
    return _link_exists(EdgeNetwork.of(cfg).bridge)


def wait_edge_pair(cfg: Settings, table: Mapping[str, Service], timeout: float = 20.0) -> str:
    """Wait until one edge is MASTER, the other BACKUP, and the virtual address answers."""
    net = EdgeNetwork.of(cfg)
    deadline = time.monotonic() + timeout
    roles: dict[str, str | None] = {}
    while time.monotonic() < deadline:
        roles = edge_roles(cfg, table)
        if sorted(map(str, roles.values())) == ["BACKUP", "MASTER"] and port_open(
            cfg.nginx_https_port, host=net.vip
        ):
            return " ".join(f"{name} role={role}" for name, role in roles.items())
        time.sleep(0.2)
    shown = ", ".join(f"{name} {role or 'no state'}" for name, role in roles.items())
    raise ClusterError(
        f"the edge pair did not settle on one MASTER and one BACKUP within {timeout:.0f}s: {shown}"
    )


def stop_legacy_nginx(cfg: Settings) -> list[str]:
    """Stop the lone NGINX a cluster started before the edge pair (its PID file is ``nginx.pid``),
    so that ``down`` after an upgrade leaves nothing of the old layout running."""
    marker = str(cfg.state_dir / "nginx" / "nginx.conf")
    service = Service("nginx", [], marker=marker, stop_signal=signal.SIGQUIT)
    pid = recorded_pid(service, cfg)
    if pid and stop_service(service, cfg):
        wait_stopped(service, cfg, pid, timeout=30)
        return ["nginx (before the edge pair)"]
    return []
