"""The Sunday burst's section of the report: medians of the rounds, each goal with its verdict."""

from datetime import UTC, datetime

import pytest

from bench.burst import BurstResult, markdown

pytestmark = pytest.mark.unit


def _result(**overrides: object) -> BurstResult:
    result = BurstResult(
        recurring=10_000,
        recipients=970_000,
        tick=datetime(2026, 11, 29, 9, tzinfo=UTC),
        interval=60.0,
        queued_seconds=42.5,
        run_seconds=41.0,
        run_counts={"occurrences": 10_000, "messages_created": 970_000},
        queued_messages=970_000,
        rounds={1: [100.0, 120.0, 110.0], 2: [210.0, 230.0], 3: [300.0, 320.0]},
        sent=40_000,
        provider_rows=40_000,
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
    assert "no provider call twice): met." in text
    assert "**not met**" not in text


@pytest.mark.parametrize(
    ("overrides", "goal"),
    [
        ({"queued_seconds": 75.0}, "within one interval (60 s): 75.0 s: **not met**"),
        ({"rounds": {1: [100.0], 2: [150.0], 3: [200.0]}}, "2.00x: **not met**"),
        ({"missing_recipients": 3}, "no provider call twice): **not met**"),
        ({"provider_duplicates": 1}, "no provider call twice): **not met**"),
        ({"queued_messages": 969_999}, "no provider call twice): **not met**"),
        ({"provider_rows": 40_001}, "no provider call twice): **not met**"),
    ],
)
def test_a_missed_goal_says_not_met(overrides: dict[str, object], goal: str) -> None:
    assert goal in markdown(_result(**overrides))
