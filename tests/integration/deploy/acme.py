"""An offline ACME world for the certificate tests: Debian's pebble (the CA), pebble-challtestsrv
(its DNS, answering 127.0.0.1 for every name), edge NGINXes rendered from deploy/nginx, and
certbot with deploy/certs/deploy-hook.sh, all on free ports below 32768, all stopped by PID."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import ssl
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from deploy.local.cluster import REPO
from deploy.nginx.render import render_nginx
from tests.programs import require_program
from tests.support import free_port, stop_process, wait_until

DOMAIN = "edge.test"
HOOK = REPO / "deploy" / "certs" / "deploy-hook.sh"


@dataclass
class Edge:
    """One edge NGINX with its certificate files."""

    folder: Path
    conf: Path
    http_port: int
    https_port: int
    tls_cert: Path
    tls_key: Path

    def hook_env(self) -> dict[str, str]:
        """The deploy hook's settings for this edge (on a VM: /etc/app/certs.env)."""
        log = self.folder / "error.log"
        return {
            **os.environ,
            "NGINX_TLS_CERT": str(self.tls_cert),
            "NGINX_TLS_KEY": str(self.tls_key),
            "NGINX_CHECK_COMMAND": f"nginx -t -q -c {self.conf} -e {log}",
            "NGINX_RELOAD_COMMAND": f"nginx -c {self.conf} -e {log} -s reload",
            "CERT_METRICS_FILE": str(self.metrics_file),
        }

    @property
    def metrics_file(self) -> Path:
        """Where the hook writes the certificate's end (node_exporter's textfile folder on a VM)."""
        return self.folder / "textfile" / "edge_tls_certificate.prom"

    def served_certificate(self, roots: str) -> bytes:
        """The certificate NGINX presents for the domain (SNI), verified against ``roots``."""
        context = ssl.create_default_context(cadata=roots)
        with (
            socket.create_connection(("127.0.0.1", self.https_port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=DOMAIN) as tls,
        ):
            certificate = tls.getpeercert(binary_form=True)
        assert certificate is not None
        return certificate


@dataclass
class AcmeWorld:
    folder: Path
    directory_url: str  # the ACME directory certbot talks to
    management: int  # pebble's management port (its roots)
    ca_bundle: Path  # trusts pebble's own HTTPS listener
    webroot: Path  # the renewing edge's
    edge: Edge  # the renewer: certbot runs next to it
    peer: Edge | None  # the other edge of a pair, if any

    def certbot(self, *args: str) -> subprocess.CompletedProcess[str]:
        """certbot against pebble, its state in the world's folder, the deploy hook installing
        into the renewing edge's NGINX and reloading it."""
        env = {**self.edge.hook_env(), "REQUESTS_CA_BUNDLE": str(self.ca_bundle)}
        state = ["--config-dir", str(self.folder / "le"), "--work-dir", str(self.folder / "le-work"),
                 "--logs-dir", str(self.folder / "le-logs")]  # fmt: skip
        return subprocess.run(
            [require_program("certbot", "certbot"), *args, *state, "--server", self.directory_url,
             "--non-interactive", "--no-random-sleep-on-renew", "--deploy-hook", str(HOOK)],
            env=env, capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip

    def issue(self) -> subprocess.CompletedProcess[str]:
        return self.certbot(
            "certonly", "--webroot", "-w", str(self.webroot), "-d", DOMAIN,
            "--agree-tos", "--register-unsafely-without-email",
        )  # fmt: skip

    def lineage(self) -> Path:
        return self.folder / "le" / "live" / DOMAIN

    def pebble_root(self) -> str:
        """The root certificate pebble issues under (it makes a new one at every start)."""
        context = ssl.create_default_context(cafile=str(self.ca_bundle))
        url = f"https://127.0.0.1:{self.management}/roots/0"
        with urllib.request.urlopen(url, context=context, timeout=10) as response:
            return response.read().decode()


def _openssl(*args: str) -> None:
    subprocess.run(
        [require_program("openssl", "openssl"), *args], check=True, capture_output=True, timeout=60
    )


def _listener_certificate(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a certificate for 127.0.0.1 signed by it: pebble's own HTTPS listener."""
    ca_key, ca, key, csr, cert = (folder / name for name in ("ca.key", "ca.crt", "l.key", "l.csr", "l.crt"))
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=acme test CA",
             "-keyout", str(ca_key), "-out", str(ca))  # fmt: skip
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        str(key),
        "-out",
        str(csr),
    )
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
             "-days", "2", "-extfile", str(folder / "san.ext"), "-out", str(cert))  # fmt: skip
    return ca, cert, key


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def _process(
    argv: list[str], *, port: int, folder: Path, name: str, env: dict[str, str] | None = None
) -> Iterator[None]:
    log_path = folder / f"{name}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=folder, start_new_session=True
        )
        try:
            wait_until(
                lambda: process.poll() is None and _accepts(port),
                timeout=15,
                message=lambda: f"{name} does not listen on {port}: {log_path.read_text()[-2000:]}",
            )
            yield
        finally:
            stop_process(process, timeout=10, session=True)


def _ports(count: int) -> list[int]:
    ports: list[int] = []
    for _ in range(count):  # free_port gives the first free port: take each after the previous one
        ports.append(free_port(range((ports[-1] + 1) if ports else 29100, 32000)))
    return ports


@contextlib.contextmanager
def _edge(folder: Path, *, http: int, https: int, webroot: Path, renewer: str = "") -> Iterator[Edge]:
    """An edge NGINX from the templates, starting with a self-signed pair certbot's replaces."""
    folder.mkdir(mode=0o755)
    (folder / "textfile").mkdir()
    for temp in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (folder / temp).mkdir(mode=0o777)
    cert, key = folder / "edge.crt", folder / "edge.key"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={DOMAIN}",
             "-keyout", str(key), "-out", str(cert))  # fmt: skip
    conf = render_nginx(
        folder, environ={}, server_name=DOMAIN, listen_host="127.0.0.1", http_port=http, https_port=https,
        tls_cert=cert, tls_key=key, app_servers=["127.0.0.1:1"], websocket_servers=["127.0.0.1:1"],
        internal_networks=["127.0.0.1/32"], state_dir=folder, log_dir=folder, acme_webroot=webroot,
        acme_renewer=renewer,
    )  # fmt: skip
    nginx = require_program("nginx", "nginx")
    argv = [nginx, "-e", str(folder / "error.log"), "-c", str(conf), "-g", "daemon off;"]
    with _process(argv, port=https, folder=folder, name="nginx"):
        yield Edge(folder=folder, conf=conf, http_port=http, https_port=https, tls_cert=cert, tls_key=key)


@contextlib.contextmanager
def acme_world(folder: Path, *, pair: bool = False) -> Iterator[AcmeWorld]:
    """pebble and its DNS, the renewing edge, and with ``pair`` a second edge that holds the
    address pebble validates on (it has no token and asks the renewer for it)."""
    folder.chmod(0o755)  # NGINX's workers run unprivileged and read the webroot
    pebble, challtestsrv = (
        require_program("pebble", "pebble"),
        require_program("pebble-challtestsrv", "pebble"),
    )
    ca, listener_cert, listener_key = _listener_certificate(folder)
    acme, management, dns, dns_management, http, https, peer_http, peer_https = _ports(8)
    webroot = folder / "webroot"
    webroot.mkdir()
    config = {
        "pebble": {
            "listenAddress": f"127.0.0.1:{acme}",
            "managementListenAddress": f"127.0.0.1:{management}",
            "certificate": str(listener_cert),
            "privateKey": str(listener_key),
            # where pebble validates HTTP-01: the edge that holds the site's address
            "httpPort": peer_http if pair else http,
            "tlsPort": peer_https if pair else https,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }
    }
    (folder / "pebble.json").write_text(json.dumps(config))
    # No random refusals or waits: the test is about the edge, not certbot's retries.
    pebble_env = {
        **os.environ,
        "PEBBLE_VA_NOSLEEP": "1",
        "PEBBLE_WFE_NONCEREJECT": "0",
        "PEBBLE_AUTHZREUSE": "0",
    }
    with contextlib.ExitStack() as stack:
        stack.enter_context(_process(
            [challtestsrv, "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "", "-dns01", f"127.0.0.1:{dns}",
             "-http01", "", "-https01", "", "-tlsalpn01", "", "-management", f"127.0.0.1:{dns_management}"],
            port=dns_management, folder=folder, name="challtestsrv",
        ))  # fmt: skip
        stack.enter_context(_process(
            [pebble, "-config", str(folder / "pebble.json"), "-dnsserver", f"127.0.0.1:{dns}"],
            port=acme, folder=folder, name="pebble", env=pebble_env,
        ))  # fmt: skip
        edge = stack.enter_context(_edge(folder / "edge", http=http, https=https, webroot=webroot))
        peer = None
        if pair:
            peer = stack.enter_context(
                _edge(
                    folder / "peer",
                    http=peer_http,
                    https=peer_https,
                    webroot=folder / "peer-webroot",
                    renewer=f"127.0.0.1:{http}",
                )
            )
        yield AcmeWorld(
            folder=folder, directory_url=f"https://127.0.0.1:{acme}/dir", management=management,
            ca_bundle=ca, webroot=webroot, edge=edge, peer=peer,
        )  # fmt: skip
