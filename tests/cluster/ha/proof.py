"""Issue 20's proof for one fault, in one form for every component (bench/faults.py lists them).

:func:`run_fault` starts from verified full redundancy, puts the steady read+write load on the
edge, SIGKILLs the whole component and leaves it down, then restores it through the cluster's
tooling and measures the rejoin. :func:`assert_proof` makes the checks every fault makes: no
request failed beyond the component's bound, the component was redundant again within 60 s,
no acknowledged write was lost, none reached the provider twice, and every one was sent within
the bound plus two sweep intervals.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

from bench.apiload import READ, WRITE, ApiLoad
from bench.exactly_once import key_prefix
from bench.faults import REJOIN_WITHIN, Delivery, Fault, restore, verified_redundancy, wait_delivered
from deploy.local import cluster

DOWN_FOR = 20.0  # longer than every bound, and than Patroni's ttl (10 s)


@dataclass
class FaultRun:
    fault: Fault
    load: ApiLoad
    killed: list[str]
    killed_at: float  # time.monotonic()
    roles_before: dict[str, str]
    rejoined_after: float  # seconds from the start of `up` to the component's redundancy
    delivery: Delivery
    delivered_by: float  # seconds after the kill of the last delivery check

    def failed(self, kind: str) -> list:
        return self.load.failed(kind)

    def summary(self) -> str:
        parts = [f"{self.fault.name} ({'+'.join(self.killed)}) killed under load:"]
        for kind in (WRITE, READ):
            parts.append(
                f"{kind}s {len(self.failed(kind))} failed of {len(self.load.of(kind))}, out for "
                f"{self.load.unavailable_for(kind, self.killed_at):.1f} s, slowest "
                f"{self.load.slowest(kind, self.killed_at):.1f} s;"
            )
        parts.append(
            f"redundant again {self.rejoined_after:.1f} s after `up`; {self.delivery.acknowledged} "
            f"acknowledged, checked {self.delivered_by:.1f} s after the kill: "
            + ("; ".join(self.delivery.problems) or "all sent once")
        )
        return " ".join(parts)


def sends_deadline(fault: Fault) -> float:
    """Seconds after the kill by which every accepted message must have been sent."""
    return fault.sends_within + 2 * float(settings.MESSAGING_SWEEP_INTERVAL_SECONDS)


def run_fault(
    cfg: cluster.Settings,
    fault: Fault,
    api_load: Callable[..., ApiLoad],
    *,
    down_for: float = DOWN_FOR,
    while_down: Callable[[float], None] | None = None,
) -> FaultRun:
    """Kill ``fault``'s component under load, keep it down ``down_for`` seconds (and until
    ``while_down(killed_at)`` returns), restore it through the tooling; what happened."""
    # given full redundancy and a steady read+write load through the edge
    roles = verified_redundancy(cfg)
    load = api_load()
    time.sleep(3.0)
    assert load.failed(WRITE) == [] and load.failed(READ) == [], "failures before the fault"
    # when the whole component is SIGKILLed and left down
    killed = fault.kill(cfg)
    killed_at = time.monotonic()
    time.sleep(down_for)
    if while_down is not None:
        while_down(killed_at)
    # and then restored through the cluster's tooling
    rejoined_after = restore(cfg, fault)
    time.sleep(2.0)
    load.stop()
    found, at = wait_delivered(
        cfg, load.acknowledged_writes(), key_prefix=key_prefix(), deadline=killed_at + sends_deadline(fault)
    )
    return FaultRun(fault, load, killed, killed_at, roles, rejoined_after, found, at - killed_at)


def assert_proof(run: FaultRun) -> None:
    """What every fault must show (issue 20, "Proof")."""
    fault, load = run.fault, run.load
    for kind, bound in ((WRITE, fault.writes_within), (READ, fault.reads_within)):
        failed = load.failed(kind)
        if kind in fault.in_flight_may_fail:
            # only requests in flight at the kill failed, each answered within the bound
            late = [a for a in failed if a.sent >= run.killed_at or a.done - run.killed_at > bound]
        else:
            # no request failed beyond the component's bound (none at all where it is 0)
            late = [a for a in failed if bound == 0 or a.done - run.killed_at > bound]
        assert late == [], f"{kind}s failed beyond the bound ({bound:g} s): {[vars(a) for a in late[:3]]}"
    assert load.acknowledged_writes(), "no write succeeded"
    # the component was redundant again within 60 s of the restore (restore() fails past it)
    assert run.rejoined_after <= REJOIN_WITHIN
    # no acknowledged write lost, none sent twice, and none unsent when the bound plus two sweep
    # intervals had passed (wait_delivered stops looking then)
    assert run.delivery.problems == [], run.summary()
