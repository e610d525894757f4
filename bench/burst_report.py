"""The Sunday burst's result (``bench.burst``) and the report's section written from it: the
tick, the sending rates, the drain with a worker killed, exactly-once at the provider, and each
goal with its verdict."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime

from bench.exactly_once import ProviderCheck

SEND_GOAL = 2.5  # 3 workers >= 2.5x one


@dataclass
class BurstResult:
    recurring: int = 0
    recipients: int = 0
    tick: datetime | None = None
    interval: float = 0.0
    queued_seconds: float = 0.0  # tick -> the run's end
    run_seconds: float = 0.0  # the run's start -> its end
    run_counts: dict[str, int] = field(default_factory=dict)
    rounds: dict[int, list[float]] = field(default_factory=dict)  # workers -> messages/s per round

    @property
    def rates(self) -> dict[int, float]:
        """Workers -> the median of their rounds, in messages per second."""
        return {count: statistics.median(values) for count, values in self.rounds.items() if values}

    drain_seconds: float | None = None  # None: the rest of the queue was not sent
    killed: str = ""  # the sending worker SIGKILLed during the drain
    resent: int = 0  # messages the sweep found stuck after the kill and resent under their key
    held_for_review: int = 0  # must stay 0: the provider deduplicates
    provider: ProviderCheck | None = None
    capped: str = ""
    load: list[float] = field(default_factory=list)


def markdown(result: BurstResult) -> str:
    """The report's section: the tick, the sending rates, exactly-once, each goal with its verdict."""

    def verdict(ok: bool) -> str:
        return "met" if ok else "**not met**"

    rates = result.rates
    one = rates.get(1, 0.0)
    three = rates.get(3, 0.0)
    best = max(rates.values(), default=0.0)
    check = result.provider
    problems = check.problems() if check else ["not checked"]
    if not result.killed:
        problems.append("no worker was killed")
    if result.held_for_review:
        problems.append(f"{result.held_for_review:,} messages held for review instead of resent")
    lines = [
        "### The Sunday burst",
        "",
        f"Measured by `python -m bench.burst` (run by `make bench SCALE=phase2`): "
        f"{result.recurring:,} recurring messages (one per church, biggest first, to all its contacts) "
        f"due at one tick of the `recurring-messages` job ({result.interval:g} s interval), "
        f"{result.recipients:,} recipients in total. The tick's delivery is published as beat "
        f"publishes it and run by one Celery worker; then 1, 2 and 3 workers take the send tasks "
        f"in turn ({result.capped}; concurrency 1 each; NGINX, PostgreSQL, PgBouncer and Redis "
        f"uncapped). Load average (1 min) at each step: {', '.join(f'{v:.1f}' for v in result.load)}.",
        "",
        "| step | result |",
        "|---|---|",
        f"| the tick, from its time to every message queued | {result.queued_seconds:,.1f} s "
        f"(the run itself {result.run_seconds:,.1f} s; {result.run_counts.get('messages_created', 0):,} "
        f"messages created, {result.run_counts.get('occurrences', 0):,} occurrences) |",
    ]
    for count, rate in sorted(rates.items()):
        each = ", ".join(f"{value:,.0f}" for value in result.rounds[count])
        lines.append(
            f"| sending, {count} worker{'s' if count > 1 else ''} (median of rounds: {each}) | "
            f"{rate:,.0f} messages/s ({rate / one if one else 0:.2f}x one worker) |"
        )
    lines += [
        f"| time to send all {result.recipients:,} at the best measured rate | "
        f"{result.recipients / best / 60 if best else float('inf'):,.0f} min |",
        "| the rest of the queue, sent by 3 uncapped workers | "
        + (
            f"{result.drain_seconds:,.0f} s |"
            if result.drain_seconds is not None
            else "not sent (--no-drain) |"
        ),
        "| a sending worker SIGKILLed during it; messages then found stuck and resent under their key; "
        "held for review | "
        + (
            f"{result.killed}; {result.resent:,}; {result.held_for_review:,} |"
            if result.killed
            else "none killed |"
        ),
    ]
    if check:
        lines += [
            f"| at the provider: messages / recipients; provider calls (all since the burst began) | "
            f"{check.messages:,} / {check.recipients:,}; {check.provider_calls:,} |",
            f"| at the provider: messages unsent; sent more than once | "
            f"{check.unsent:,}; {check.sent_twice:,} |",
            f"| at the provider: recipients with no SMS; with more than one | "
            f"{check.recipients_without_sms:,}; {check.recipients_more_than_once:,} |",
        ]
    lines += [
        "",
        f"- Goal, the whole tick queued within one interval ({result.interval:g} s): "
        f"{result.queued_seconds:,.1f} s: {verdict(result.queued_seconds <= result.interval)}.",
        f"- Goal, sending throughput grows with the workers (3 workers >= {SEND_GOAL}x one): "
        f"{three / one if one else 0:.2f}x: {verdict(one > 0 and three / one >= SEND_GOAL)}.",
        f"- Goal, exactly once at the provider with a sending worker SIGKILLed (every message sent once, "
        f"every recipient one SMS, no stray call): {verdict(not problems)}"
        + (f" ({'; '.join(problems)})." if problems else "."),
    ]
    return "\n".join(lines) + "\n"
