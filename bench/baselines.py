"""The load test's baselines: NGINX ``return 200``, and a bare WSGI app (``bench/bare_wsgi.py``)
under the app servers' gunicorn config, three instances like the three app servers, through a
tiny NGINX of its own (rendered in a temporary folder on a free port below 32768, started and
stopped by PID, TLS with the cluster's certificate like the real edge)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from bench import nginx
from bench.servers import start_gunicorn, stop_side_servers, wait_port
from deploy.local import cluster
from deploy.local.host import free_port

BASELINE_HTTP = """
    access_log {folder}/access.log;
    upstream bare {{
        least_conn;
{upstreams}
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        location = /return200 {{ access_log off; return 200 "ok\\n"; }}
        location / {{
            proxy_pass http://bare;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Request-ID $request_id;
            proxy_next_upstream error timeout http_502 http_503;
        }}
    }}
"""


@contextlib.contextmanager
def baseline_servers(cfg: cluster.Settings) -> Iterator[int]:
    """Three bare-WSGI gunicorns and an NGINX in front of them; yields NGINX's port."""
    folder = nginx.make_folder("bench-baseline-")
    processes = []
    try:
        ports = []
        for index in range(len(cfg.app_ports)):
            port, name = free_port(), f"bare{index + 1}"
            env = {**os.environ, "APP_SERVER_NAME": name, "HEALTH_DRAIN_SECONDS": "0"}
            env.pop("PROMETHEUS_MULTIPROC_DIR", None)
            log = folder / f"{name}.log"
            processes.append(
                start_gunicorn(port=port, name=name, app="bench.bare_wsgi:application", env=env, log=log)
            )
            wait_port(port)
            ports.append(port)
        nginx_port = free_port()
        tls = cfg.state_dir / "nginx"
        http = BASELINE_HTTP.format(
            folder=folder,
            port=nginx_port,
            cert=tls / "tls.crt",
            key=tls / "tls.key",
            upstreams="\n".join(f"        server 127.0.0.1:{port};" for port in ports),
        )
        processes.append(nginx.start(folder, http, workers="auto", connections=16384))
        wait_port(nginx_port)
        yield nginx_port
    finally:
        stop_side_servers(processes, timeout=15)
