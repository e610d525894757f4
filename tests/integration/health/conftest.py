import socket
from collections.abc import Iterator

import pytest

from health import runner
from tests.support import free_port


@pytest.fixture(autouse=True)
def _fresh_probe_results() -> Iterator[None]:
    """Each test sees its own checks run, not a result cached by the previous test."""
    runner.clear_cache()
    yield
    runner.clear_cache()


@pytest.fixture
def hung_port() -> Iterator[int]:
    """A port that accepts TCP connections (the kernel's backlog) and never answers: what a
    paused (SIGSTOP) server looks like from the outside."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as free_port probes
        port = free_port()
        listener.bind(("127.0.0.1", port))
        listener.listen(16)
        yield port


@pytest.fixture
def closed_port() -> int:
    """A port nobody listens on: what a stopped server looks like."""
    return free_port()
