"""What the load test (``bench.run``) plans and what it records: the plan, one row per
measurement, the run that holds them, and the progress lines it prints."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

# Rows measured without the status split: the baselines answer 200 only, and the split's Lua
# callback would make wrk itself the bottleneck of NGINX's "return 200".
BASELINES = ("NGINX return 200", "bare WSGI")


@dataclass(frozen=True)
class Plan:
    """How big the run is: the full run, or the quick one the test suite runs."""

    quick: bool
    levels: tuple[int, ...]  # concurrent connections for the wrk scenarios
    headline: tuple[int, int]  # the two levels the goals talk about
    seconds: float  # per wrk measurement
    locust_users: tuple[int, int]
    locust_seconds: float
    churches: int
    contacts: int
    messages: int
    pgbouncer_clients: int
    restart_seconds: float
    mix_churches: int = 0  # churches whose staff the realistic mix signs in as

    @classmethod
    def full(cls) -> Plan:
        return cls(False, (64, 256, 1024, 5000), (64, 5000), 15.0, (64, 5000), 60.0, 100, 20_000,
                   100_000, 300, 20.0, mix_churches=500)  # fmt: skip

    @classmethod
    def fast(cls) -> Plan:
        return cls(True, (8, 32), (8, 32), 1.0, (8, 50), 6.0, 2, 20, 200, 20, 6.0, mix_churches=3)

    def wrk_seconds(self, concurrency: int) -> float:
        """How long a wrk row at ``concurrency`` lasts: thousands of TLS handshakes come first, so
        a big full run gets the time to reach a steady state."""
        return max(self.seconds, 0 if self.quick else concurrency / 200)


@dataclass
class Row:
    """One measurement: a scenario at one concurrency."""

    scenario: str
    concurrency: int
    tool: str
    requests: int = 0
    rps: float = 0.0
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    errors: int = 0
    primary_connections_max: int = 0
    note: str = ""
    ok: bool = True
    # Answers by status (cluster rows; wrk_status.lua): served 2xx, shed 503, anything else.
    served: int | None = None
    shed: int = 0
    cpu_machine_ms: float = 0.0  # whole-machine busy CPU per request (/proc/stat)
    cpu_cluster_ms: float = 0.0  # the cluster's own processes' CPU per request
    generator_cores: float = 0.0  # the load generator's CPU, in cores

    @property
    def served_rps(self) -> float:
        """2xx answers per second: what was served, never what was shed or failed."""
        if self.served is None or not self.requests:
            return self.rps
        return self.rps * self.served / self.requests


@dataclass
class Run:
    plan: Plan
    rows: list[Row] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    micro: dict[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    load_at_start: tuple[float, float, float] = field(default_factory=os.getloadavg)

    def row(self, scenario: str, concurrency: int) -> Row | None:
        """The first row of ``scenario`` at ``concurrency``, if it was measured."""
        return next((r for r in self.rows if r.scenario == scenario and r.concurrency == concurrency), None)


def say(message: str) -> None:
    print(message, flush=True)
