"""The availability run's arithmetic and its report section, without a cluster."""

import pytest

from bench.availability import (
    GOAL_PERCENT,
    MONTH_SECONDS,
    FaultResult,
    Result,
    covered_seconds,
    monthly_availability,
    section,
)
from bench.faults import Delivery

pytestmark = pytest.mark.unit


def _fault(name: str, reads_out: float, writes_out: float) -> FaultResult:
    return FaultResult(name, name, [name], at=10.0, restored_at=40.0, rejoin_seconds=8.0,
                       reads_out=reads_out, writes_out=writes_out)  # fmt: skip


def test_a_month_of_weekly_failures_costs_each_downtime_thirty_sevenths_of_times():
    # given downtimes of 10 s and 2 s; when a month of weekly failures is computed
    percent = monthly_availability([10.0, 2.0])
    # then 30/7 of each is lost of 30 days
    assert percent == pytest.approx(100 * (1 - (30 / 7) * 12 / MONTH_SECONDS))
    assert monthly_availability([]) == 100.0


def test_the_goal_holds_up_to_one_minute_of_downtime_a_week():
    # 99.99 % of a month is 259.2 s; a week's failures may cost 259.2 / (30 / 7) = 60.48 s
    assert monthly_availability([60.0]) >= GOAL_PERCENT
    assert monthly_availability([61.0]) < GOAL_PERCENT


def test_each_fault_costs_the_longer_of_its_reads_and_writes_outage():
    result = Result(minutes=10, capacity=100, rate=50, down_for=20, edge="https://edge")
    result.faults = [_fault("postgres-leader", 3.0, 9.0), _fault("pgbouncer", 0.5, 0.0)]
    assert result.availability == monthly_availability([9.0, 0.5])


def test_the_section_names_every_fault_and_says_whether_the_goal_was_met():
    result = Result(minutes=10, capacity=100, rate=50, down_for=20, edge="https://edge")
    result.faults = [_fault("postgres-leader", 3.0, 9.0)]
    text = section(result, Delivery(acknowledged=5, missing=[], unsent=[], duplicated=[]), quick=False)
    assert "| postgres-leader | postgres-leader | 10 | 0 | 0 | 3.0 | 9.0 | 0.0 / 0.0 |" in text
    assert f"**{result.availability:.5f} %** available (goal >= 99.99 %: met)" in text
    result.faults = [_fault("postgres-leader", 3.0, 90.0)]
    assert "NOT met" in section(result, Delivery(5, [], [], []), quick=False)


def test_overlapping_stalls_count_once():
    assert covered_seconds([(0.0, 3.0), (1.0, 4.0), (10.0, 11.5), (10.5, 11.0)]) == pytest.approx(5.5)
    assert covered_seconds([]) == 0.0


def test_the_stricter_month_counts_each_fault_s_stall_where_it_is_longer():
    result = Result(minutes=10, capacity=100, rate=50, down_for=20, edge="https://edge")
    result.faults = [_fault("postgres-leader", 0.0, 0.0), _fault("app-server", 0.0, 0.5)]
    result.faults[0].stalled = 11.0
    assert result.availability == monthly_availability([0.0, 0.5])
    assert result.availability_without_stalls == monthly_availability([11.0, 0.5])
