"""The availability run: steady traffic through the edge while each component is killed once.

    .venv/bin/python -m bench.availability --minutes 10     # part of `make bench`; rewrites its section
    .venv/bin/python -m bench.availability --quick --out DIR   # ~75 s, two faults (the suite's variant)

Against the running local cluster, as root like the cluster itself:

1. capacity: the read+write mix of ``bench.apiload`` as fast as its threads go for a few seconds
   (``--capacity`` skips it); the run then offers about half of what was served;
2. that load through the edge for ``--minutes``, one third ``POST /api/messages``, the rest
   ``GET /api/messages``; at even spacing each component of ``bench.faults.FAULTS`` is SIGKILLed
   whole, left down ``--down`` seconds, restored by ``python -m deploy.local.cluster up``, and full
   redundancy is waited for before the next;
3. per fault, the failed reads and writes, the seconds each kind was unavailable (from the
   kill to the answer of the last failed request of the fault's window), the slowest answers and
   the seconds in which requests stalled (failed or waited over ``STALL_SECONDS``) until the
   restore; every acknowledged write checked at the end: in the database, sent once at the
   development provider;
4. the availability a month would have if each component failed once a week
   (:func:`monthly_availability`, goal >= 99.99 %), again with the stalls counted, a plot of
   served requests and errors per second with the faults marked, and a section of ``report.md``
   between its markers (``make bench``'s other parts keep it), plus ``availability.json``.

Nothing is asserted: the numbers are what this machine did, goals are reported met or not.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.apiload import READ, WRITE, ApiLoad, edge_url, prepared_load
from bench.faults import FAULTS, Delivery, Fault, restore, verified_redundancy, wait_delivered
from bench.inprocess import django_environment
from bench.phase2 import replace_section
from deploy.local import cluster
from deploy.local.cluster import REPO

MARKERS = ("<!-- availability -->", "<!-- /availability -->")
PLOT_PNG = "availability.png"
GOAL_PERCENT = 99.99
MONTH_SECONDS = 30 * 86_400
FAILURES_PER_MONTH = 30 / 7  # each component once a week
WRITE_SHARE = 1 / 3
QUICK_FAULTS = ("etcd-member", "app-server")
CAPACITY_THREADS = 8  # per kind
# A request answered later than this counts as stalled (issue 20's shortest bound): the stricter
# month figure counts the time requests stalled as unavailable too.
STALL_SECONDS = 2.0


def say(message: str) -> None:
    print(message, flush=True)


def covered_seconds(spans: list[tuple[float, float]]) -> float:
    """The length of the union of ``(start, end)`` spans: overlapping waits count once."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def monthly_availability(downtimes: list[float]) -> float:
    """Percent of a 30-day month the service is available if each component fails once a week and
    each failure costs its measured seconds of unavailability (``downtimes``, one per component)."""
    return 100.0 * (1.0 - FAILURES_PER_MONTH * sum(downtimes) / MONTH_SECONDS)


@dataclass
class FaultResult:
    name: str
    what: str
    killed: list[str]
    at: float  # seconds from the start of the load
    restored_at: float  # when the component was redundant again (seconds from the start)
    rejoin_seconds: float  # from the start of `up`
    failed_reads: int = 0
    failed_writes: int = 0
    reads_out: float = 0.0  # seconds
    writes_out: float = 0.0
    # The longest a request of the fault's window took: a stall that did not fail (writes waiting
    # for a new leader) shows here, not in the seconds unavailable.
    slowest_read: float = 0.0
    slowest_write: float = 0.0
    # Seconds in which some request sent between the kill and the restore failed or waited longer
    # than STALL_SECONDS (the union of those requests' spans).
    stalled: float = 0.0
    bound: str = ""
    error: str = ""  # the restore failed: what it said

    @property
    def downtime(self) -> float:
        """Seconds the service was unavailable for this fault: either kind failing counts."""
        return max(self.reads_out, self.writes_out)


@dataclass
class Result:
    minutes: float
    capacity: float
    rate: float
    down_for: float
    edge: str
    started: float = field(default_factory=time.time)
    faults: list[FaultResult] = field(default_factory=list)
    reads: int = 0
    writes: int = 0
    failed_reads: int = 0
    failed_writes: int = 0
    seconds: float = 0.0  # how long the load ran: at least the minutes asked, longer if the faults took it

    @property
    def availability(self) -> float:
        return monthly_availability([fault.downtime for fault in self.faults])

    @property
    def availability_without_stalls(self) -> float:
        """The month again, counting every stall over STALL_SECONDS as unavailable too."""
        return monthly_availability([max(fault.downtime, fault.stalled) for fault in self.faults])


# --- the run -------------------------------------------------------------------------------------


def _load(cfg: cluster.Settings, rate: float) -> ApiLoad:
    return prepared_load(cfg, writes_per_second=rate * WRITE_SHARE, reads_per_second=rate * (1 - WRITE_SHARE))


def threads_for(rate: float) -> int:
    """Threads per kind: enough that requests held up by a fault (up to the 20 s timeout) do not
    hold back the schedule of the others."""
    return max(4, min(32, round(rate / 4)))


def measure_capacity(cfg: cluster.Settings, seconds: float) -> float:
    """Requests served per second by the same mix with nothing between requests."""
    load = _load(cfg, 10_000.0)  # a schedule no thread keeps: each sends as soon as its answer came
    load.start(threads_per_kind=CAPACITY_THREADS)
    started = time.monotonic()
    time.sleep(seconds)
    load.stop()
    warm = started + min(2.0, seconds / 4)  # the first seconds open connections
    served = [a for a in load.answers if a.ok and a.done >= warm and a.done <= started + seconds]
    return len(served) / (started + seconds - warm)


def run(
    cfg: cluster.Settings,
    faults: list[Fault],
    *,
    minutes: float,
    capacity: float,
    down_for: float,
    settle: float,
) -> tuple[Result, ApiLoad, float]:
    """Run the load and the faults; the result, the load (every answer) and its start (monotonic)."""
    rate = capacity / 2
    result = Result(minutes=minutes, capacity=capacity, rate=rate, down_for=down_for, edge=edge_url(cfg))
    verified_redundancy(cfg, timeout=120)
    load = _load(cfg, rate)
    load.start(threads_per_kind=threads_for(rate))
    t0 = time.monotonic()
    spacing = minutes * 60 / (len(faults) + 1)
    kills: list[float] = []
    for index, fault in enumerate(faults, 1):
        time.sleep(max(0.0, t0 + index * spacing - time.monotonic()))
        verified_redundancy(cfg, timeout=120)
        killed = fault.kill(cfg)
        killed_at = time.monotonic()
        kills.append(killed_at)
        say(f"  {killed_at - t0:6.1f} s  killed {fault.name}: {', '.join(killed)}; down for {down_for:g} s")
        time.sleep(down_for)
        entry = FaultResult(fault.name, fault.what, killed, killed_at - t0, 0.0, 0.0, bound=_bound(fault))
        restoring = time.monotonic()
        try:
            entry.rejoin_seconds = restore(cfg, fault)
        except AssertionError as error:  # past the 60 s bound: reported, and the run goes on
            entry.error = str(error)
            entry.rejoin_seconds = time.monotonic() - restoring
        entry.restored_at = time.monotonic() - t0
        say(f"  {entry.restored_at:6.1f} s  {fault.name} redundant {entry.rejoin_seconds:.1f} s after up")
        result.faults.append(entry)
        time.sleep(settle)
    time.sleep(max(0.0, t0 + minutes * 60 - time.monotonic()))
    load.stop()
    result.seconds = time.monotonic() - t0
    # A request belongs to the fault during which its answer came: one in flight at a kill fails
    # because of that kill, not the one before.
    ends = [*kills[1:], float("inf")]
    for entry, killed_at, until in zip(result.faults, kills, ends, strict=True):
        window = [a for a in load.answers if killed_at <= a.done < until]
        entry.failed_reads = sum(1 for a in window if a.kind == READ and not a.ok)
        entry.failed_writes = sum(1 for a in window if a.kind == WRITE and not a.ok)
        entry.reads_out = load.unavailable_for(READ, killed_at, until)
        entry.writes_out = load.unavailable_for(WRITE, killed_at, until)
        entry.slowest_read = max((a.done - a.sent for a in window if a.kind == READ), default=0.0)
        entry.slowest_write = max((a.done - a.sent for a in window if a.kind == WRITE), default=0.0)
        restored = t0 + entry.restored_at
        entry.stalled = covered_seconds(
            [
                (a.sent, a.done)
                for a in window
                if a.sent <= restored and (not a.ok or a.done - a.sent > STALL_SECONDS)
            ]
        )
    result.reads, result.writes = len(load.of(READ)), len(load.of(WRITE))
    result.failed_reads, result.failed_writes = len(load.failed(READ)), len(load.failed(WRITE))
    return result, load, t0


def _bound(fault: Fault) -> str:
    if fault.writes_within == fault.reads_within == 0:
        return "no failed request"
    scope = "in flight " if fault.in_flight_may_fail else ""
    return f"{scope}writes {fault.writes_within:g} s, reads {fault.reads_within:g} s"


def check_delivery(cfg: cluster.Settings, load: ApiLoad, faults: list[Fault]) -> Delivery:
    """Every acknowledged write: in the database, sent once, none left unsent after the longest
    sending bound and two sweep intervals from now (the load has stopped)."""
    from django.conf import settings

    from bench.exactly_once import key_prefix

    wait = (
        max((fault.sends_within for fault in faults), default=0.0)
        + 2 * settings.MESSAGING_SWEEP_INTERVAL_SECONDS
    )
    found, _ = wait_delivered(
        cfg, load.acknowledged_writes(), key_prefix=key_prefix(), deadline=time.monotonic() + wait
    )
    return found


# --- the report ------------------------------------------------------------------------------------


def plot(result: Result, load: ApiLoad, t0: float, out: Path) -> Path:
    """Served requests and errors per second over the run, each fault's time down shaded."""
    from bench.plots import _pyplot

    plt = _pyplot()
    seconds = int(result.seconds) + 1
    series = {(kind, ok): [0] * seconds for kind in (READ, WRITE) for ok in (True, False)}
    for answer in load.answers:
        second = int(answer.done - t0)
        if 0 <= second < seconds:
            series[(answer.kind, answer.ok)][second] += 1
    figure, (served, errors) = plt.subplots(2, 1, figsize=(10, 6), sharex=True, height_ratios=(2, 1))
    xs = list(range(seconds))
    served.plot(xs, series[(READ, True)], label="reads served (2xx)", linewidth=0.8)
    served.plot(xs, series[(WRITE, True)], label="writes served (2xx)", linewidth=0.8)
    errors.plot(xs, series[(READ, False)], label="reads failed", color="tab:red", linewidth=0.8)
    errors.plot(xs, series[(WRITE, False)], label="writes failed", color="tab:purple", linewidth=0.8)
    for fault in result.faults:
        for axis in (served, errors):
            axis.axvspan(fault.at, fault.restored_at, color="grey", alpha=0.2)
        served.annotate(fault.name, (fault.at, 1.0), xycoords=("data", "axes fraction"), rotation=90,
                        va="top", ha="right", fontsize=7)  # fmt: skip
    served.set_ylabel("per second")
    served.set_title(
        "Served requests over the availability run (grey: a component down until redundant again)"
    )
    served.legend(fontsize=8, loc="lower right")
    served.grid(True, alpha=0.3)
    errors.set_ylabel("failed per second")
    errors.set_xlabel("seconds since the load started")
    errors.legend(fontsize=8)
    errors.grid(True, alpha=0.3)
    figure.tight_layout()
    path = out / PLOT_PNG
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def section(result: Result, delivery: Delivery, *, quick: bool) -> str:
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(result.started))
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    mode = (
        "QUICK MODE (seconds, two faults: the numbers mean nothing)"
        if quick
        else f"{result.minutes:g} minutes"
    )
    downtime = sum(fault.downtime for fault in result.faults)
    met = "met" if result.availability >= GOAL_PERCENT else "NOT met"
    stalled = sum(max(fault.downtime, fault.stalled) for fault in result.faults)
    stalled_met = "met" if result.availability_without_stalls >= GOAL_PERCENT else "NOT met"
    lines = [
        f"## Availability: each component killed once under load — {mode}",
        "",
        f"Measured {when} by `python -m bench.availability` (part of `make bench`; load average {load} at "
        f"the end). {result.seconds:.0f} s of steady traffic through the edge ({result.edge}) at "
        f"{result.rate:.0f} requests/s, one third `POST /api/messages`, the rest `GET /api/messages`: "
        f"about half of the {result.capacity:.0f}/s the same mix was served at by {2 * CAPACITY_THREADS} "
        "threads with nothing between requests, measured just before. Each component below was "
        f"SIGKILLed whole, left down {result.down_for:g} s, restored by "
        f"`python -m deploy.local.cluster up`, and full redundancy was waited for before the next. "
        "Unavailable: seconds from the kill to the answer of the last failed request of that kind "
        "(0: none failed).",
        "",
        "| killed | processes | at (s) | failed reads | failed writes | reads unavailable (s) "
        f"| writes unavailable (s) | slowest read / write (s) | stalled > {STALL_SECONDS:g} s (s) "
        "| bound (issue 20) | redundant again after `up` (s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for fault in result.faults:
        rejoin = f"FAILED: {fault.error}" if fault.error else f"{fault.rejoin_seconds:.1f}"
        lines.append(
            f"| {fault.what} | {', '.join(fault.killed)} | {fault.at:.0f} | {fault.failed_reads} | "
            f"{fault.failed_writes} | {fault.reads_out:.1f} | {fault.writes_out:.1f} | "
            f"{fault.slowest_read:.1f} / {fault.slowest_write:.1f} | {fault.stalled:.1f} | {fault.bound} "
            f"| {rejoin} |"
        )
    lines += [
        "",
        f"Requests: {result.reads:,} reads ({result.failed_reads} failed), {result.writes:,} writes "
        f"({result.failed_writes} failed). Acknowledged writes: {delivery.acknowledged:,}; lost "
        f"{len(delivery.missing)}, sent twice {len(delivery.duplicated)}, unsent two sweep intervals "
        f"after the run {len(delivery.unsent)}.",
        "",
        f"**A month with each component failing once a week** ({FAILURES_PER_MONTH:.2f} failures of each "
        f"in 30 days, each costing the larger of its reads' and writes' unavailable seconds above): "
        f"{FAILURES_PER_MONTH:.2f} x {downtime:.1f} s = {FAILURES_PER_MONTH * downtime:.0f} s of "
        f"{MONTH_SECONDS:,} s, **{result.availability:.5f} %** available (goal >= {GOAL_PERCENT} %: {met}). "
        f"Stricter, counting as unavailable every second in which a request waited more than "
        f"{STALL_SECONDS:g} s between a kill and the restore (the stalled column): "
        f"{FAILURES_PER_MONTH:.2f} x {stalled:.1f} s = {FAILURES_PER_MONTH * stalled:.0f} s, "
        f"{result.availability_without_stalls:.5f} % ({stalled_met}).",
        "",
        f"![Served requests and errors over the availability run]({PLOT_PNG})",
    ]
    return "\n".join(lines) + "\n"


def write(
    result: Result, delivery: Delivery, load: ApiLoad, t0: float, *, out: Path, quick: bool
) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    figure = plot(result, load, t0, out)
    report = out / "report.md"
    replace_section(report, section(result, delivery, quick=quick), MARKERS)
    figures = out / "availability.json"
    data = {
        **asdict(result),
        "availability_percent": result.availability,
        "availability_without_stalls_percent": result.availability_without_stalls,
        "delivery": asdict(delivery),
    }
    figures.write_text(json.dumps(data, indent=1) + "\n")
    return [report, figure, figures]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="The availability run (see bench/availability.py).")
    parser.add_argument("--minutes", type=float, help="minutes of steady traffic (default 10; quick: 1.25)")
    parser.add_argument("--capacity", type=float, help="requests/s the mix is served at (default: measured)")
    parser.add_argument("--down", type=float, help="seconds each component stays down (default 20; quick 10)")
    parser.add_argument("--faults", help=f"comma-separated, of: {', '.join(FAULTS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help=f"~75 s with {' and '.join(QUICK_FAULTS)}")
    parser.add_argument(
        "--out", type=Path, help="where report.md is (default: bench/, or a temp dir when quick)"
    )
    args = parser.parse_args(argv)
    django_environment("availability")
    import django

    django.setup()
    names = args.faults.split(",") if args.faults else list(QUICK_FAULTS if args.quick else FAULTS)
    unknown = [name for name in names if name not in FAULTS]
    if unknown:
        parser.error(f"unknown fault {', '.join(unknown)}; one of {', '.join(FAULTS)}")
    faults = [FAULTS[name] for name in names]
    minutes = args.minutes or (1.25 if args.quick else 10.0)
    down_for = args.down or (10.0 if args.quick else 20.0)
    out = args.out or (Path(tempfile.mkdtemp(prefix="bench-availability-")) if args.quick else REPO / "bench")
    cfg = cluster.Settings()
    capacity = args.capacity
    if not capacity:
        seconds = 5.0 if args.quick else 20.0
        say(f"availability: measuring the mix's capacity for {seconds:g} s")
        capacity = measure_capacity(cfg, seconds)
    say(f"availability: {minutes:g} min at {capacity / 2:.0f} requests/s (half of {capacity:.0f}/s), faults: "
        + ", ".join(names))  # fmt: skip
    result, load, t0 = run(cfg, faults, minutes=minutes, capacity=capacity, down_for=down_for,
                           settle=5.0 if args.quick else 15.0)  # fmt: skip
    say("availability: checking every acknowledged write at the provider")
    delivery = check_delivery(cfg, load, faults)
    for path in write(result, delivery, load, t0, out=out, quick=args.quick):
        say(f"wrote {path}")
    say(
        f"availability for a month with each component failing once a week: {result.availability:.5f} % "
        f"({result.availability_without_stalls:.5f} % counting stalls over {STALL_SECONDS:g} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
