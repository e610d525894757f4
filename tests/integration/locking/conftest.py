"""Fixtures for the lock tests: unique lock names, and child processes that hold locks."""

import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from locking.services import JobLock, acquire_job_lock, release_job_lock
from tests.support import REPO, stop_process


@pytest.fixture
def lock_name() -> str:
    """A lock name no other test (or parallel test run) uses."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def held(lock_name: str) -> Iterator[JobLock]:
    """The lock ``lock_name``, held by this process for the test."""
    lock = acquire_job_lock(lock_name, ttl=10)
    assert lock is not None
    yield lock
    release_job_lock(lock)


class Holder:
    """A child process running ``tests/integration/locking/lockproc.py hold``, driven line by line."""

    def __init__(self, process: subprocess.Popen[str]):
        self.process = process

    @property
    def pid(self) -> int:
        return self.process.pid

    def read(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            stderr = self.process.stderr.read() if self.process.stderr else ""
            raise AssertionError(f"holder process ended: {stderr}")
        return line.strip()

    def ask(self, command: str) -> str:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.read()


@pytest.fixture
def spawn_holder(child_env: dict[str, str]) -> Iterator[object]:
    started: list[subprocess.Popen[str]] = []

    def spawn(name: str, ttl: float) -> Holder:
        process = subprocess.Popen(
            [sys.executable, str(REPO / "tests/integration/locking/lockproc.py"), "hold", name, str(ttl)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env,
            cwd=REPO,
        )
        started.append(process)
        return Holder(process)

    yield spawn
    for process in started:
        stop_process(process, signal.SIGKILL)  # SIGKILL also ends a stopped (SIGSTOP) holder
