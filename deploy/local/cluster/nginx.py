"""NGINX: the edge's configuration and self-signed certificate, rendered from the deploy template."""

from __future__ import annotations

from deploy.local.cluster.processes import run
from deploy.local.cluster.settings import Settings
from deploy.nginx.render import render_nginx


def prepare_nginx(cfg: Settings) -> None:
    folder = cfg.state_dir / "nginx"
    folder.mkdir(parents=True, exist_ok=True)
    for temp in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (folder / temp).mkdir(exist_ok=True)
        (folder / temp).chmod(0o777)  # written by the unprivileged worker processes
    cert, key = folder / "tls.crt", folder / "tls.key"
    if not cert.exists():
        run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "825",
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost,IP:127.0.0.1",
                "-keyout",
                str(key),
                "-out",
                str(cert),
            ],
            log=cfg.log_dir / "nginx.log",
            step="self-signed certificate",
        )
    render_nginx(
        folder,
        environ={},  # the same templates as production, with this cluster's values only
        # The tests call https://127.0.0.1:PORT; redirects go to the first name.
        server_name="localhost 127.0.0.1",
        listen_host="127.0.0.1",
        http_port=cfg.nginx_http_port,
        https_port=cfg.nginx_https_port,
        tls_cert=cert,
        tls_key=key,
        app_servers=[f"127.0.0.1:{port}" for port in cfg.app_ports],
        websocket_servers=[f"127.0.0.1:{port}" for port in cfg.live_ports],
        # Only 127.0.0.1 is "internal" here, so tests can play an outside client from 127.0.0.2.
        internal_networks=["127.0.0.1/32", "::1/128"],
        ratelimit_bypass_token=cfg.ratelimit_bypass_token(),
        state_dir=folder,
        log_dir=cfg.log_dir,
    )
    run(
        ["nginx", "-t", "-q", "-e", str(cfg.log_dir / "nginx-error.log"), "-c", str(folder / "nginx.conf")],
        log=cfg.log_dir / "nginx.log",
        step="nginx -t",
    )
