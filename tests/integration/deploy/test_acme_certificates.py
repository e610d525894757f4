"""Certificates issued and renewed over ACME, offline (issue 22): certbot from Debian against
Debian's pebble, HTTP-01 answered by an edge NGINX rendered from deploy/nginx, and
deploy/certs/deploy-hook.sh installing each certificate and reloading NGINX. The renewal happens
under a steady stream of HTTPS requests, none of which may fail; with an edge pair, the edge
without the token fetches it from the renewer, and the renewer's certificate reaches both."""

import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.integration.deploy.acme import DOMAIN, HOOK, AcmeWorld, Edge, acme_world
from tests.programs import require_root
from tests.support import wait_until

pytestmark = pytest.mark.integration


@contextmanager
def _world(*, pair: bool) -> Iterator[AcmeWorld]:
    require_root("NGINX's reload and its unprivileged workers")
    # Not under pytest's tmp_path (mode 0700 above it): NGINX's workers must read the webroot.
    folder = Path(tempfile.mkdtemp(prefix="acme-test-", dir="/tmp"))
    try:
        with acme_world(folder, pair=pair) as world:
            yield world
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def world() -> Iterator[AcmeWorld]:
    with _world(pair=False) as acme:
        yield acme


@pytest.fixture
def pair() -> Iterator[AcmeWorld]:
    with _world(pair=True) as acme:
        yield acme


def _leaf(world: AcmeWorld) -> bytes:
    """The leaf certificate certbot holds for the domain, DER."""
    return ssl.PEM_cert_to_DER_cert((world.lineage() / "cert.pem").read_text())


def _not_after(world: AcmeWorld) -> int:
    """When certbot's certificate ends, in seconds since the epoch."""
    return int(ssl.cert_time_to_seconds(
        subprocess.run(
            ["openssl", "x509", "-noout", "-enddate", "-in", str(world.lineage() / "cert.pem")],
            capture_output=True, text=True, check=True, timeout=30,
        ).stdout.strip().split("=", 1)[1]
    ))  # fmt: skip


def _serves(world: AcmeWorld, edge: Edge, expected: bytes) -> None:
    # until a reload is done the self-signed first certificate may be served, which does not verify
    wait_until(
        lambda: edge.served_certificate(world.pebble_root()) == expected,
        timeout=10,
        message=f"NGINX on {edge.https_port} serves the expected certificate",
        ignoring=(ssl.SSLError,),
    )


class SteadyClients:
    """New HTTPS connections to an edge, one after another from two threads, each verified against
    pebble's roots, until stopped: every failure is kept."""

    def __init__(self, world: AcmeWorld, edge: Edge) -> None:
        self.port = edge.https_port
        self.trust = ssl.create_default_context(cadata=world.pebble_root())
        self.served: list[bytes] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(2)]

    def _run(self) -> None:
        request = f"GET /nginx_status HTTP/1.1\r\nHost: {DOMAIN}\r\nConnection: close\r\n\r\n".encode()
        while not self._stop.is_set():
            try:
                with (
                    socket.create_connection(("127.0.0.1", self.port), timeout=5) as raw,
                    self.trust.wrap_socket(raw, server_hostname=DOMAIN) as tls,
                ):
                    certificate = tls.getpeercert(binary_form=True)
                    tls.sendall(request)
                    answer = b""
                    while chunk := tls.recv(4096):
                        answer += chunk
                status = answer.split(b"\r\n", 1)[0]
                if status != b"HTTP/1.1 200 OK" or certificate is None:
                    self.failures.append(status.decode(errors="replace"))
                else:
                    self.served.append(certificate)
            except (OSError, ssl.SSLError) as error:
                self.failures.append(repr(error))

    def __enter__(self) -> "SteadyClients":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)


def test_a_certificate_is_issued_renewed_and_served_without_a_failed_request(world):
    # when certbot asks pebble for a certificate, proving the domain over HTTP-01 through the edge
    issued = world.issue()
    # then the deploy hook put it in place and NGINX serves it, verified against pebble's root
    assert issued.returncode == 0, issued.stdout + issued.stderr
    first = _leaf(world)
    _serves(world, world.edge, first)
    # when the certificate is renewed while clients keep connecting
    with SteadyClients(world, world.edge) as clients:
        time.sleep(1)
        renewed = world.certbot("renew", "--force-renewal")
        assert renewed.returncode == 0, renewed.stdout + renewed.stderr
        second = _leaf(world)
        assert second != first
        _serves(world, world.edge, second)
        time.sleep(1)
    # then no request failed, and the clients saw the first certificate and then the renewed one
    assert clients.failures == []
    assert first in clients.served and second in clients.served
    assert clients.served.index(second) > clients.served.index(first)
    assert len(clients.served) > 20
    # and the alert's figure is the renewed certificate's end
    assert world.edge.metrics_file.read_text().splitlines()[-1] == (
        f'edge_tls_certificate_not_after_seconds{{domain="{DOMAIN}"}} {_not_after(world)}'
    )


def test_with_an_edge_pair_the_other_edge_passes_the_challenge_and_serves_the_renewal(pair):
    # given pebble validating on the peer edge (it holds the address), which has no token of its own
    assert pair.peer is not None
    # when the renewer issues
    issued = pair.issue()
    assert issued.returncode == 0, issued.stdout + issued.stderr
    # and hands the pair to the peer, as the hook does over ssh (EDGE_PEERS)
    incoming = pair.peer.folder / "incoming"
    incoming.mkdir()
    for name in ("fullchain.pem", "privkey.pem"):
        shutil.copy(pair.lineage() / name, incoming / name)
    installed = subprocess.run(
        ["sh", str(HOOK), "--install", str(incoming / "fullchain.pem"), str(incoming / "privkey.pem")],
        env=pair.peer.hook_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    # then both edges serve the one certificate
    assert installed.returncode == 0, installed.stderr
    _serves(pair, pair.edge, _leaf(pair))
    _serves(pair, pair.peer, _leaf(pair))
    assert not list(incoming.iterdir())  # the copies are gone once installed


@pytest.mark.parametrize(
    ("algorithm", "options"),
    [
        # certbot's keys are P-256: a stranger's key of the same type
        ("EC", ["-pkeyopt", "ec_paramgen_curve:P-256"]),
        # one of another type, which nginx -t alone lets through (OpenSSL keeps it in another slot)
        ("RSA", []),
    ],
    ids=["same-type", "other-type"],
)
def test_a_key_that_does_not_belong_to_the_certificate_is_not_installed(world, algorithm, options):
    # given the edge serving an issued certificate
    issued = world.issue()
    assert issued.returncode == 0, issued.stdout + issued.stderr
    _serves(world, world.edge, _leaf(world))
    installed = world.edge.tls_cert.read_text(), world.edge.tls_key.read_text()
    # when the hook is handed a key that does not belong to the certificate
    broken = world.folder / "broken"
    broken.mkdir()
    shutil.copy(world.lineage() / "fullchain.pem", broken / "fullchain.pem")
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", algorithm, *options, "-out", str(broken / "privkey.pem")],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    result = subprocess.run(
        ["sh", str(HOOK)], env={**world.edge.hook_env(), "RENEWED_LINEAGE": str(broken)},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    # then the hook fails, the old pair stays in place, and NGINX still serves the old certificate
    assert result.returncode != 0
    assert "the old one stays" in result.stderr
    assert (world.edge.tls_cert.read_text(), world.edge.tls_key.read_text()) == installed
    assert world.edge.served_certificate(world.pebble_root()) == _leaf(world)
