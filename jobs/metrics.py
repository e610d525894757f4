"""Prometheus counters: how deliveries and ticks ended, per job (per process, like all counters)."""

from prometheus_client import Counter

JOB_DELIVERIES = Counter(
    "jobs_deliveries_total",
    "Deliveries of a job's tick by how they ended (ran, or skipped and why).",
    ["job", "outcome"],
)
JOB_TICKS = Counter(
    "jobs_ticks_total",
    "Ticks run (or recorded as missed) by outcome.",
    ["job", "outcome"],
)
