"""Starting and stopping one process by its recorded PID (checked against /proc, since PIDs get reused)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from deploy.local.cluster.settings import REPO, ClusterError, Settings


@dataclass
class Service:
    """One process of the cluster."""

    name: str
    argv: list[str]
    port: int | None = None
    port_var: str = ""
    user: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    stop_signal: signal.Signals = signal.SIGTERM
    stop_timeout: float = 30.0
    prepare: Callable[[Settings], None] | None = None
    # A string that must appear in /proc/PID/cmdline, so a reused PID is never signalled.
    marker: str = ""
    # For an HTTP server: a path that answers 200 once its workers serve. A gunicorn master
    # binds its port before the workers have loaded Django, and a balancer sending traffic in
    # that gap sees requests wait in the listen backlog.
    ready_path: str | None = None
    # Where its port is reached from the host: an edge answers on its own network namespace's
    # address (``netns``), whose ports are its own, so they are not checked on the host.
    host: str = "127.0.0.1"
    netns: str | None = None

    def pid_file(self, cfg: Settings) -> Path:
        return cfg.pid_dir / f"{self.name}.pid"

    def log_file(self, cfg: Settings) -> Path:
        return cfg.log_dir / f"{self.name}.log"


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return ""
    if state in ("Z", "X"):  # a zombie has finished; only its parent has not noticed
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def recorded_pid(service: Service, cfg: Settings) -> int | None:
    """The PID we started for ``service`` if it still runs that command, else None."""
    try:
        pid = int(service.pid_file(cfg).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    cmd = _cmdline(pid)
    if cmd and service.marker in cmd:
        return pid
    return None


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def port_open(port: int, timeout: float = 0.5, *, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def chown_to(path: Path, user: str) -> None:
    import pwd

    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def run(
    argv: Sequence[str], *, log: Path, user: str | None = None, env: dict[str, str] | None = None, step: str
) -> str:
    """Run a short command to completion; on failure raise naming the step and the log."""
    full_env = {**os.environ, **(env or {})}
    if user:
        full_env["HOME"] = "/"  # the postgres user cannot read root's HOME
    result = subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        env=full_env,
        user=user,
        cwd=REPO if not user else "/",
        check=False,
    )
    with log.open("a") as handle:
        handle.write(f"$ {' '.join(argv)}\n{result.stdout}{result.stderr}\n")
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise ClusterError(f"{step} failed: {tail[0]} (log: {log})")
    return result.stdout


@contextlib.contextmanager
def exclusive(service: Service, cfg: Settings) -> Iterator[None]:
    """One start or stop of a process at a time, across processes (parallel test runs)."""
    cfg.pid_dir.mkdir(parents=True, exist_ok=True)
    with (cfg.pid_dir / f"{service.name}.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def start_service(service: Service, cfg: Settings, *, wait: bool = True) -> int:
    """Start one process unless it already runs; return its PID."""
    with exclusive(service, cfg):
        return _start_service(service, cfg, wait=wait)


def _start_service(service: Service, cfg: Settings, *, wait: bool) -> int:
    pid = recorded_pid(service, cfg)
    if pid:
        return pid
    if service.port is not None and service.netns is None and _port_in_use(service.port):
        raise ClusterError(
            f"port {service.port} for {service.name} is already in use; "
            f"set {service.port_var} to choose another"
        )
    if service.prepare:
        service.prepare(cfg)
    log = service.log_file(cfg)
    env = {**os.environ, **cfg.app_env(), **service.env}
    if service.user:
        env["HOME"] = "/"
    with log.open("ab") as handle:
        process = subprocess.Popen(
            service.argv,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            user=service.user,
            cwd=REPO if not service.user else "/",
            start_new_session=True,  # our signals (Ctrl-C in a test run) never reach it
        )
    service.pid_file(cfg).write_text(f"{process.pid}\n")
    if wait:
        _wait_started(service, cfg, process)
    return process.pid


def _wait_started(
    service: Service, cfg: Settings, process: subprocess.Popen[bytes], timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ClusterError(
                f"{service.name} exited with code {process.returncode} at start "
                f"(log: {service.log_file(cfg)})"
            )
        if service.port is None:
            if time.monotonic() > deadline - timeout + 1.0:
                return
        elif port_open(service.port, host=service.host) and (
            service.ready_path is None or _answers_ok(service.port, service.ready_path)
        ):
            return
        time.sleep(0.1)
    raise ClusterError(f"{service.name} did not start within {timeout:.0f}s (log: {service.log_file(cfg)})")


def _answers_ok(port: int, path: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:  # refused, reset, timed out, or an HTTP error status
        return False


def stop_service(service: Service, cfg: Settings, *, sig: signal.Signals | None = None) -> bool:
    """Stop one process by its recorded PID; return whether it was running."""
    pid = recorded_pid(service, cfg)
    if pid is None:
        service.pid_file(cfg).unlink(missing_ok=True)
        return False
    try:
        os.kill(pid, signal.SIGCONT)  # a paused process cannot act on SIGTERM
        os.kill(pid, sig or service.stop_signal)
    except ProcessLookupError:
        pass
    return True


def wait_stopped(service: Service, cfg: Settings, pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cmd = _cmdline(pid)
        if not cmd or service.marker not in cmd:
            service.pid_file(cfg).unlink(missing_ok=True)
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    service.pid_file(cfg).unlink(missing_ok=True)
