"""NGINX: each edge's configuration and the pair's self-signed certificate, rendered from the
deploy template (the edges run in network namespaces, deploy/local/cluster/edge.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from deploy.local.cluster.edge import edge_folder, ensure_edge_network
from deploy.local.cluster.processes import run
from deploy.local.cluster.settings import EdgeNetwork, Settings
from deploy.nginx.render import render_nginx


def nginx_config_file(cfg: Settings, edge: str) -> Path:
    return edge_folder(cfg, edge) / "nginx.conf"


def _certificate(cfg: Settings, net: EdgeNetwork) -> tuple[Path, Path]:
    """One certificate for both edges, naming the virtual address clients use (and each edge's
    own, for probes of one edge). Made again when the addresses change."""
    folder = cfg.state_dir / "nginx"
    cert, key, names_file = folder / "tls.crt", folder / "tls.key", folder / "tls.names"
    names = ",".join(
        ["DNS:localhost", "IP:127.0.0.1", f"IP:{net.vip}", f"IP:{net.address('a')}", f"IP:{net.address('b')}"]
    )
    if cert.exists() and names_file.exists() and names_file.read_text().strip() == names:
        return cert, key
    run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "825", "-subj", "/CN=localhost",
         "-addext", f"subjectAltName={names}", "-keyout", str(key), "-out", str(cert)],
        log=cfg.log_dir / "nginx.log",
        step="self-signed certificate",
    )  # fmt: skip
    names_file.write_text(names + "\n")
    return cert, key


def prepare_nginx(edge: str) -> Callable[[Settings], None]:
    def make(cfg: Settings) -> None:
        net = ensure_edge_network(cfg)
        folder = edge_folder(cfg, edge)
        folder.mkdir(parents=True, exist_ok=True)
        for temp in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (folder / temp).mkdir(exist_ok=True)
            (folder / temp).chmod(0o777)  # written by the unprivileged worker processes
        cert, key = _certificate(cfg, net)
        render_nginx(
            folder,
            environ={},  # the same templates as production, with this cluster's values only
            # Clients use the virtual address; redirects go to the first name.
            server_name=f"{net.vip} localhost {net.address(edge)}",
            # Every address of this namespace: the virtual one comes and goes with keepalived.
            listen_host="0.0.0.0",  # noqa: S104 - inside the edge's own namespace
            http_port=cfg.nginx_http_port,
            https_port=cfg.nginx_https_port,
            tls_cert=cert,
            tls_key=key,
            app_servers=[f"{net.host_address}:{port}" for port in cfg.app_ports],
            websocket_servers=[f"{net.host_address}:{port}" for port in cfg.live_ports],
            # The host's bridge address (an operator on the host) and the namespace's own
            # loopback are internal; an outside client added on the bridge is not (ADR 0020).
            internal_networks=["127.0.0.1/32", "::1/128", f"{net.host_address}/32"],
            ratelimit_bypass_token=cfg.ratelimit_bypass_token(),
            state_dir=folder,
            log_dir=cfg.log_dir,
        )
        conf = folder / "nginx.conf"
        run(
            ["nginx", "-t", "-q", "-e", str(cfg.log_dir / "nginx-error.log"), "-c", str(conf)],
            log=cfg.log_dir / "nginx.log",
            step="nginx -t",
        )

    return make
