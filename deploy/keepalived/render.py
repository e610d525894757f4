"""Render keepalived for one edge of the NGINX pair: its config, check script and notify script.

``render_deploy keepalived --out DIR`` and the local cluster both call :func:`render_keepalived_files`,
so both run the same templates (ADR 0020). Production values come from the environment:

==========================  ==============================  ====================================
value                       variable                        default
==========================  ==============================  ====================================
router_id                   KEEPALIVED_ROUTER_ID            ``edge``
interface                   KEEPALIVED_INTERFACE            ``eth0``
own_address                 KEEPALIVED_OWN_ADDRESS          required: this edge's address
peer_address                KEEPALIVED_PEER_ADDRESS         required: the other edge's address
virtual_ip                  KEEPALIVED_VIRTUAL_IP           required: ``address/prefix``
priority                    KEEPALIVED_PRIORITY             100 (150 on the preferred edge)
virtual_router_id           KEEPALIVED_VIRTUAL_ROUTER_ID    51 (unique per network segment)
check_port                  NGINX_HTTPS_PORT                443
state_file                  KEEPALIVED_STATE_FILE           ``/run/keepalived/edge.state``
metrics_file                KEEPALIVED_METRICS_FILE         node_exporter's textfile folder:
                                                            ``/var/lib/prometheus/node-exporter/
                                                            edge_vrrp.prom``
==========================  ==============================  ====================================
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from deploy.render import render_file

TEMPLATE_DIR = Path(__file__).resolve().parent
ADVERT_INTERVAL = "0.25"  # seconds; VRRPv3 allows centiseconds
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
_PATH = re.compile(r"^/[^\s;{}'\"\\#$]+$")


class KeepalivedConfigError(ValueError):
    """A value would make a wrong keepalived configuration; the message names its variable."""


@dataclass(frozen=True)
class KeepalivedValues:
    router_id: str
    interface: str
    own_address: str
    peer_address: str
    virtual_ip: str
    priority: int = 100
    virtual_router_id: int = 51
    check_port: int = 443
    state_file: Path = Path("/run/keepalived/edge.state")
    metrics_file: Path = Path("/var/lib/prometheus/node-exporter/edge_vrrp.prom")


def _address(variable: str, value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise KeepalivedConfigError(f"{variable}={value!r} is not an IP address") from None


def keepalived_values(values: KeepalivedValues, folder: Path) -> dict[str, str]:
    """Every placeholder, checked: a stray brace or quote would change the configuration."""
    for variable, name in (
        ("KEEPALIVED_ROUTER_ID", values.router_id),
        ("KEEPALIVED_INTERFACE", values.interface),
    ):
        if not _NAME.fullmatch(name):
            raise KeepalivedConfigError(f"{variable}={name!r} is not a name of A-Z a-z 0-9 _ . -")
    try:
        virtual_ip = ipaddress.ip_interface(values.virtual_ip)
    except ValueError:
        raise KeepalivedConfigError(
            f"KEEPALIVED_VIRTUAL_IP={values.virtual_ip!r} is not address/prefix"
        ) from None
    if not 1 <= values.priority <= 254:
        raise KeepalivedConfigError(f"KEEPALIVED_PRIORITY={values.priority} is not 1-254")
    if not 1 <= values.virtual_router_id <= 255:
        raise KeepalivedConfigError(f"KEEPALIVED_VIRTUAL_ROUTER_ID={values.virtual_router_id} is not 1-255")
    if not 0 < values.check_port < 65536:
        raise KeepalivedConfigError(f"NGINX_HTTPS_PORT={values.check_port} is not a port number")
    paths = (
        ("KEEPALIVED_STATE_FILE", values.state_file),
        ("KEEPALIVED_METRICS_FILE", values.metrics_file),
        ("the output folder", folder),
    )
    for variable, path in paths:
        if not _PATH.fullmatch(str(path)):
            raise KeepalivedConfigError(f"{variable} {str(path)!r} is not an absolute path without spaces")
    return {
        "router_id": values.router_id,
        "interface": values.interface,
        "own_address": _address("KEEPALIVED_OWN_ADDRESS", values.own_address),
        "peer_address": _address("KEEPALIVED_PEER_ADDRESS", values.peer_address),
        "virtual_ip": str(virtual_ip),
        "priority": str(values.priority),
        "virtual_router_id": str(values.virtual_router_id),
        "advert_int": ADVERT_INTERVAL,
        "check_port": str(values.check_port),
        "state_file": str(values.state_file),
        "metrics_file": str(values.metrics_file),
        "check_script": str(folder / "check_nginx.sh"),
        "notify_script": str(folder / "notify.sh"),
    }


def keepalived_settings(environ: Mapping[str, str] | None = None) -> KeepalivedValues:
    """Production values from the environment (see the module's table)."""
    env = os.environ if environ is None else environ
    missing = [
        name
        for name in ("KEEPALIVED_OWN_ADDRESS", "KEEPALIVED_PEER_ADDRESS", "KEEPALIVED_VIRTUAL_IP")
        if not env.get(name)
    ]
    if missing:
        raise KeepalivedConfigError(f"{missing[0]} is required: the edge pair's addresses have no default")
    try:
        numbers = {
            "priority": int(env.get("KEEPALIVED_PRIORITY", "100")),
            "virtual_router_id": int(env.get("KEEPALIVED_VIRTUAL_ROUTER_ID", "51")),
            "check_port": int(env.get("NGINX_HTTPS_PORT", "443")),
        }
    except ValueError as error:
        raise KeepalivedConfigError(f"a keepalived number is not a number: {error}") from None
    return KeepalivedValues(
        router_id=env.get("KEEPALIVED_ROUTER_ID", "edge"),
        interface=env.get("KEEPALIVED_INTERFACE", "eth0"),
        own_address=env["KEEPALIVED_OWN_ADDRESS"],
        peer_address=env["KEEPALIVED_PEER_ADDRESS"],
        virtual_ip=env["KEEPALIVED_VIRTUAL_IP"],
        state_file=Path(env.get("KEEPALIVED_STATE_FILE", "/run/keepalived/edge.state")),
        metrics_file=Path(
            env.get("KEEPALIVED_METRICS_FILE", "/var/lib/prometheus/node-exporter/edge_vrrp.prom")
        ),
        **numbers,
    )


def render_keepalived_files(
    out_dir: Path, values: KeepalivedValues, *, scripts_dir: Path | None = None
) -> list[Path]:
    """Write ``keepalived.conf``, ``check_nginx.sh`` and ``notify.sh`` into ``out_dir``.

    ``scripts_dir`` is where the config expects the scripts at run time (default: ``out_dir``;
    a production rendering names its install folder, e.g. ``/etc/keepalived``)."""
    rendered = keepalived_values(values, scripts_dir or out_dir.resolve())
    written = [
        render_file(TEMPLATE_DIR / "keepalived.conf.template", rendered, out_dir / "keepalived.conf"),
    ]
    for script in ("check_nginx.sh", "notify.sh"):
        path = render_file(TEMPLATE_DIR / f"{script}.template", rendered, out_dir / script)
        path.chmod(0o755)
        written.append(path)
    return written
