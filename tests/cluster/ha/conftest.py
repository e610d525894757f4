"""Fault tests of issue 20 (ADR 0017): verified redundancy, a steady API load through the edge,
and what failed while a component was down. The proof every fault makes is in proof.py."""

from __future__ import annotations

import fcntl
from collections.abc import Callable, Iterator

import pytest

from bench.apiload import Answer, ApiLoad, prepared_load
from bench.faults import full_redundancy, kill_member
from deploy.local import cluster
from tests.cluster.db import connect

# The load and the kills live in bench/ (the availability run uses them too); these names stay
# importable from here for the tests.
__all__ = ["Answer", "ApiLoad", "full_redundancy", "kill_member"]


@pytest.fixture
def api_load(cluster_settings: cluster.Settings) -> Iterator[Callable[..., ApiLoad]]:
    """Start the steady load through the edge (stopped after the test)."""
    started: list[ApiLoad] = []

    def start(writes_per_second: float = 5.0, reads_per_second: float = 10.0) -> ApiLoad:
        load = prepared_load(
            cluster_settings, writes_per_second=writes_per_second, reads_per_second=reads_per_second
        )
        load.start()
        started.append(load)
        return load

    yield start
    for load in started:
        load.stop()


def messages_missing(cfg: cluster.Settings, ids: list[int]) -> list[int]:
    """Which of these message ids the database (the current leader) does not have."""
    with connect(cfg, cfg.pg_primary_port) as conn:
        found = {row[0] for row in conn.execute("SELECT id FROM messaging_message WHERE id = ANY(%s)", [ids])}
    return sorted(set(ids) - found)


@pytest.fixture
def exclusive_database(cluster_settings: cluster.Settings) -> Iterator[None]:
    """One database fault at a time on a cluster (parallel test sessions)."""
    with (cluster_settings.state_dir / "database-fault.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def log_size(cfg: cluster.Settings, name: str) -> int:
    path = cfg.log_dir / f"{name}.log"
    return path.stat().st_size if path.exists() else 0


def log_since(cfg: cluster.Settings, name: str, offset: int) -> str:
    with (cfg.log_dir / f"{name}.log").open("rb") as handle:
        handle.seek(offset)
        return handle.read().decode(errors="replace")
