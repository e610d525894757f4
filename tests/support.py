"""What the tests need around the code they test, defined once.

- ``REPO``: the repository root.
- ``wait_until``: poll a condition until it holds, or fail saying what was waited for and what
  was last seen. Every "eventually" in the tests goes through it, so each has a deadline.
- ``child_env``, ``cluster_env``, ``run_script``, ``manage``: child Python processes, on this
  test run's database or on the running cluster's.
- ``free_port``: a port below the kernel's ephemeral range (deploy/local/host.py).
- ``stop_process``, ``paused``, ``signal_service_group``: ending and pausing processes, by PID
  or process group only, never by name.
- ``psql``: SQL as the ``postgres`` superuser on one of the cluster's PostgreSQL servers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar

from deploy.local import cluster
from deploy.local.cluster import REPO
from deploy.local.cluster.patroni import leader_port
from deploy.local.cluster.settings import PG_BIN
from deploy.local.host import free_port, stop_process

__all__ = [
    "REPO",
    "WaitTimeout",
    "child_env",
    "cluster_env",
    "free_port",
    "manage",
    "paused",
    "psql",
    "run_script",
    "signal_service_group",
    "stop_process",
    "wait_until",
]

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """A condition a test waited for did not hold in time."""


def wait_until(
    condition: Callable[[], T | None],
    *,
    timeout: float,
    message: str | Callable[[], str],
    interval: float = 0.05,
    ignoring: tuple[type[Exception], ...] = (),
) -> T:
    """Call ``condition`` every ``interval`` seconds until it returns a true value; return that.

    It is always called at least once, and once more at the deadline, so a slow call is never
    the reason a wait fails. Past ``timeout`` seconds, raise ``WaitTimeout`` with ``message``
    (a callable is called then, to describe the state the test gave up in) and the last value
    returned, or the last of the ``ignoring`` exceptions raised (e.g. a server restarting).
    """
    deadline = time.monotonic() + timeout
    while True:
        past_deadline = time.monotonic() >= deadline
        last: object
        try:
            last = value = condition()
        except ignoring as error:
            last = error
        else:
            if value:
                return value
        if past_deadline:
            described = message() if callable(message) else message
            raise WaitTimeout(f"{described} (waited {timeout:g} s; last: {last!r})")
        time.sleep(max(0.0, min(interval, deadline - time.monotonic())))


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child Python process that must use this test run's database (the
    name pytest-django gave it) with the test settings, importing from the repository."""
    from django.db import connections

    from config.databases import PRIMARY_DB_ALIAS

    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DB_NAME": connections[PRIMARY_DB_ALIAS].settings_dict["NAME"],
        "PYTHONPATH": str(REPO),
        **extra,
    }


def cluster_env(cfg: cluster.Settings, *, server: str = "tests", **extra: str) -> dict[str, str]:
    """The environment of a child process that works on the running cluster's own database and
    services, as an app server named ``server`` would."""
    return {
        **os.environ,
        **cfg.app_env(),
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "APP_SERVER_NAME": server,
        **extra,
    }


def run_script(
    script: str, *args: str, env: Mapping[str, str] | None = None, stdin: str = "", timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``script`` (a path from the repository root) with this interpreter, from the root,
    capturing text output; never raises on a non-zero exit (the tests assert on it)."""
    return subprocess.run(
        [sys.executable, script, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=None if env is None else dict(env),
        cwd=REPO,
        timeout=timeout,
        check=False,
    )


def manage(
    *args: str, env: Mapping[str, str] | None = None, stdin: str = "", timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``manage.py ARGS`` as a child process (``env``: ``child_env()``, ``cluster_env(cfg)``, or
    None for this process's own); the caller asserts on its exit code and output."""
    return run_script("manage.py", *args, env=env, stdin=stdin, timeout=timeout)


@contextlib.contextmanager
def paused(*pids: int) -> Iterator[None]:
    """SIGSTOP the processes for the block and SIGCONT them after it, also when it fails: a
    process left stopped would hang every later test that needs it. One that has exited
    meanwhile is skipped."""
    stopped: list[int] = []
    try:
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)
        yield
    finally:
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def signal_service_group(cfg: cluster.Settings, name: str, sig: signal.Signals) -> int:
    """Send ``sig`` to a running cluster process and every process of its group: the cluster
    starts each in its own session, so the group is the process and its workers and nothing
    else. Return the group's PID."""
    pid = cluster.recorded_pid(cluster.services(cfg)[name], cfg)
    assert pid is not None, f"{name} is not running"
    os.killpg(pid, sig)
    return pid


def psql(cfg: cluster.Settings, sql: str, *, port: int | None = None, db: str = "postgres") -> str:
    """Run ``sql`` as the ``postgres`` superuser over the unix socket on the server at ``port``
    (default: the member that is the leader now); its unaligned output, stripped. Fails on any SQL error."""
    result = subprocess.run(
        ["runuser", "-u", "postgres", "--", str(PG_BIN / "psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
         "-h", str(cfg.run_dir), "-p", str(port or leader_port(cfg)), "-U", "postgres", "-d", db,
         "-c", sql],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"psql failed on {sql!r}: {result.stderr}"
    return result.stdout.strip()
