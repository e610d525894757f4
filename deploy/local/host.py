"""What local processes (the cluster, the tests' side servers, the benchmarks) need of this machine.

Ports are taken below 32768: the kernel's ephemeral range starts there, and binds inside it
failed against TIME_WAIT client sockets (shared/DESIGN.md facts). The default range stays
clear of the cluster's own ports (25xxx-28xxx).
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
from typing import Any

SPARE_PORTS = range(29100, 32000)


def free_port(ports: range = SPARE_PORTS) -> int:
    """The first port of ``ports`` that nothing is bound to on 127.0.0.1."""
    for port in ports:
        with socket.socket() as probe:
            # as the servers we start bind (SO_REUSEADDR): a port in TIME_WAIT is usable
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1}")


def raise_file_limit(wanted: int = 65536) -> None:
    """Raise this process's open-file limit (inherited by what it starts) to ``wanted``, or as
    high as the hard limit allows: PgBouncer with 1,000 clients, NGINX and wrk at 5,000
    connections need far more than the default 1,024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, max(hard, wanted)))
    except (ValueError, OSError):  # only root may raise the hard limit, and not past the kernel's
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, hard), hard))


def stop_process(
    process: subprocess.Popen[Any],
    sig: signal.Signals = signal.SIGTERM,
    *,
    timeout: float = 30,
    session: bool = False,
) -> None:
    """Stop a process this program started: ``sig``, then SIGKILL if it has not exited within
    ``timeout`` seconds (a hung process must not hang whatever stops it).

    ``session``: the process was started with ``start_new_session=True``; whatever is left of
    its session afterwards is killed too. A gunicorn worker can hang in its own exit (it exits
    from a signal handler) and outlive a master killed at the timeout, holding nothing but
    memory, for good.
    """
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if session:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
