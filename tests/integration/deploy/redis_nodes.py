"""Throwaway Redis servers with the ACL lines under test, on free ports, stopped by the test that
started them: the shared cluster's nodes are never touched."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from deploy.local import cluster
from deploy.local.cluster.table import redis_acl
from deploy.local.host import free_port, stop_process


@contextlib.contextmanager
def _server(args: list[str], folder: Path, port: int) -> Iterator[None]:
    # DEBUG is enabled in the server so that only the ACL can be what refuses it.
    argv = ["/usr/bin/redis-server", *args, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
            "--appendonly", "no", "--dir", str(folder), "--enable-debug-command", "yes"]  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {process.stdout.read() if process.stdout else ''}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield
    finally:
        stop_process(process, timeout=10)


@contextlib.contextmanager
def redis_node(cfg: cluster.Settings, role: str, folder: Path) -> Iterator[str]:
    """A Redis server running ``role``'s users as the local cluster writes them; yields the app
    user's URL."""
    port = free_port()
    conf = folder / f"{role}-{port}.conf"
    conf.write_text(redis_acl(cfg, role))
    conf.chmod(0o600)
    with _server([str(conf)], folder, port):
        yield cfg.redis_url(port)


@contextlib.contextmanager
def acl_file_node(acl_file: Path, folder: Path) -> Iterator[int]:
    """A Redis server loading ``acl_file`` (``aclfile``, as production does); yields its port."""
    port = free_port()
    with _server(["--aclfile", str(acl_file)], folder, port):
        yield port
