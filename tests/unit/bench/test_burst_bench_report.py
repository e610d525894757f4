"""The Sunday burst's section of the report: medians of the rounds, each goal with its verdict."""

import contextlib
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from types import SimpleNamespace

import psutil
import pytest

from bench.burst import BurstResult, _kill_one, churches_for, markdown
from bench.exactly_once import ProviderCheck

pytestmark = pytest.mark.unit


def _check(**overrides: int) -> ProviderCheck:
    counts = {
        "recipients": 970_000,
        "messages": 970_000,
        "provider_calls": 970_000,
        "unsent": 0,
        "sent_twice": 0,
        "recipients_without_sms": 0,
        "recipients_more_than_once": 0,
        "calls_for_messages": 970_000,
    }
    return ProviderCheck(**{**counts, **overrides})


def _result(**overrides: object) -> BurstResult:
    result = BurstResult(
        recurring=10_000,
        recipients=970_000,
        tick=datetime(2026, 11, 29, 9, tzinfo=UTC),
        interval=60.0,
        queued_seconds=42.5,
        run_seconds=41.0,
        run_counts={"occurrences": 10_000, "messages_created": 970_000},
        rounds={1: [100.0, 120.0, 110.0], 2: [210.0, 230.0], 3: [300.0, 320.0]},
        drain_seconds=3_000.0,
        killed="pid 4242 at 5 s into the drain",
        resent=1,
        provider=_check(),
        capped="each worker capped at 0.5 of a core",
        load=[1.0, 2.0],
    )
    for name, value in overrides.items():
        setattr(result, name, value)
    return result


def test_the_rates_are_the_medians_of_the_rounds_and_met_goals_say_so() -> None:
    # when
    text = markdown(_result())
    # then
    assert "| 110 messages/s (1.00x one worker) |" in text
    assert "| 310 messages/s (2.82x one worker) |" in text
    assert "(median of rounds: 100, 120, 110)" in text
    assert "within one interval (60 s): 42.5 s: met." in text
    assert "(3 workers >= 2.5x one): 2.82x: met." in text
    assert "no stray call): met." in text
    assert "| at the provider: messages unsent; sent more than once | 0; 0 |" in text
    assert "held for review | pid 4242 at 5 s into the drain; 1; 0 |" in text
    assert "**not met**" not in text


@pytest.mark.parametrize(
    ("overrides", "goal"),
    [
        ({"queued_seconds": 75.0}, "within one interval (60 s): 75.0 s: **not met**"),
        ({"rounds": {1: [100.0], 2: [150.0], 3: [200.0]}}, "2.00x: **not met**"),
        (
            {"provider": _check(recipients_without_sms=3, unsent=3)},
            "no stray call): **not met** (3 messages never reached the provider; 3 recipients got no SMS).",
        ),
        (
            {"provider": _check(sent_twice=1, provider_calls=970_001, calls_for_messages=970_001)},
            "**not met** (1 messages reached the provider more than once).",
        ),
        ({"provider": _check(messages=969_999)}, "**not met** (969,999 messages for 970,000 recipients)."),
        (
            {"provider": _check(provider_calls=970_001)},
            "**not met** (1 provider calls carry no message of the burst).",
        ),
        (
            {"provider": _check(recipients_more_than_once=2)},
            "**not met** (2 recipients got more than one SMS).",
        ),
        ({"provider": None, "drain_seconds": None}, "no stray call): **not met** (not checked)."),
        ({"killed": ""}, "no stray call): **not met** (no worker was killed)."),
        ({"held_for_review": 2}, "**not met** (2 messages held for review instead of resent)."),
    ],
)
def test_a_missed_goal_says_not_met(overrides: dict[str, object], goal: str) -> None:
    assert goal in markdown(_result(**overrides))


def test_churches_are_taken_until_their_audiences_reach_the_recipients() -> None:
    # given churches (id, audience), biggest first, and one with nobody to send to
    audiences = [(7, 40_000), (3, 35_000), (9, 0), (1, 150), (2, 20)]
    # then about the recipients asked for, whatever the sizes, and never more churches than allowed
    assert churches_for(audiences, recipients=60_000, limit=100) == [7, 3]
    assert churches_for(audiences, recipients=75_100, limit=100) == [7, 3, 1]
    assert churches_for(audiences, recipients=1_000_000, limit=100) == [7, 3, 1, 2]
    assert churches_for(audiences, recipients=1_000_000, limit=2) == [7, 3]


def test_a_killed_worker_takes_its_pool_process_with_it() -> None:
    # given a "worker" whose child does the work, as a Celery prefork worker's pool does
    code = "import subprocess, time; subprocess.Popen(['sleep', '60']); time.sleep(60)"
    worker = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 10
        while not psutil.Process(worker.pid).children() and time.monotonic() < deadline:
            time.sleep(0.05)
        [child] = psutil.Process(worker.pid).children()
        # when it is killed
        killed = _kill_one(SimpleNamespace(processes=[worker]))  # type: ignore[arg-type]
        # then both are gone at once (SIGKILL: no warm shutdown finishing the task at hand)
        assert killed == worker.pid and worker.returncode == -signal.SIGKILL
        child.wait(timeout=10)
        assert not child.is_running()
    finally:
        with contextlib.suppress(ProcessLookupError):
            worker.kill()
