"""A WebSocket upgrade through NGINX reaches the upstream WebSocket server and echoes.

The echo server is a few lines of stdlib (RFC 6455 handshake, one text frame back) listening on
the port the cluster's template points /ws/ and /socket.io/ at.
"""

import base64
import contextlib
import hashlib
import os
import socket
import ssl
import struct
import threading
import time

import pytest

pytestmark = pytest.mark.cluster

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC11B85"


def accept_value(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key + GUID).digest())  # noqa: S324 - RFC 6455 says SHA-1


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"closed before {marker!r}: {data!r}")
        data += chunk
    return data


def read_exactly(sock: socket.socket, size: int, buffered: bytes = b"") -> tuple[bytes, bytes]:
    data = buffered
    while len(data) < size:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed mid-frame")
        data += chunk
    return data[:size], data[size:]


def read_frame(sock: socket.socket, buffered: bytes = b"") -> tuple[int, bytes]:
    """One unfragmented frame with a payload under 126 bytes: (opcode, payload)."""
    head, rest = read_exactly(sock, 2, buffered)
    opcode, length, masked = head[0] & 0x0F, head[1] & 0x7F, head[1] & 0x80
    assert length < 126
    mask, rest = read_exactly(sock, 4, rest) if masked else (b"", rest)
    payload, _ = read_exactly(sock, length, rest)
    if masked:
        payload = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return opcode, payload


def frame(payload: bytes, *, masked: bool) -> bytes:
    header = struct.pack("!BB", 0x81, (0x80 if masked else 0) | len(payload))
    if not masked:
        return header + payload
    mask = os.urandom(4)
    return header + mask + bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))


class EchoServer:
    """Accepts WebSocket connections and echoes one text frame, prefixed with the request path."""

    def __init__(self, port: int) -> None:
        self.listener = self._bind(port)
        self.paths: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @staticmethod
    def _bind(port: int, timeout: float = 10.0) -> socket.socket:
        deadline = time.monotonic() + timeout
        while True:  # another run of this test may still hold the port for a moment
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                listener.bind(("127.0.0.1", port))
                listener.listen(8)
                return listener
            except OSError:
                listener.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.listener.accept()
                with conn:
                    conn.settimeout(5)
                    self._echo(conn)

    def _echo(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            request = read_until(conn, b"\r\n\r\n")
            head, _, buffered = request.partition(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            self.paths.append(lines[0].split()[1])
            headers = {
                k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
            }
            conn.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept_value(headers["sec-websocket-key"].encode()) + b"\r\n\r\n"
            )
            _, payload = read_frame(conn, buffered)
            conn.sendall(frame(b"echo: " + payload, masked=False))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept(); close() alone would not
        self.listener.close()
        self.thread.join(timeout=5)


@pytest.fixture
def echo_server(cluster_settings):
    server = EchoServer(cluster_settings.websocket_port)
    try:
        yield server
    finally:
        server.close()


@pytest.mark.parametrize("path", ["/ws/chat", "/socket.io/?EIO=4&transport=websocket"])
def test_a_websocket_upgrade_through_nginx_reaches_the_upstream_and_echoes(
    echo_server, cluster_settings, path
):
    # given: a TLS connection to NGINX, as a browser would open it
    context = ssl.create_default_context(cafile=str(cluster_settings.state_dir / "nginx" / "tls.crt"))
    raw = socket.create_connection(("127.0.0.1", cluster_settings.nginx_https_port), timeout=5)
    with context.wrap_socket(raw, server_hostname="localhost") as conn:
        key = base64.b64encode(os.urandom(16))
        # when: the upgrade handshake and one text frame
        conn.sendall(
            f"GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key.decode()}\r\n\r\n".encode()
        )
        response = read_until(conn, b"\r\n\r\n")
        head, _, buffered = response.partition(b"\r\n\r\n")
        conn.sendall(frame(b"hello through nginx", masked=True))
        opcode, payload = read_frame(conn, buffered)
    # then
    assert head.startswith(b"HTTP/1.1 101")
    assert b"Sec-WebSocket-Accept: " + accept_value(key) in head
    assert (opcode, payload) == (0x1, b"echo: hello through nginx")
    assert path in echo_server.paths
