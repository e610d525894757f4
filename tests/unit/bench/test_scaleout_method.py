"""The scale-out's method (bench/scaleout.py): rotated rounds, the quota each server used, and
efficiencies above 1.05 refused as measurement errors. Planted numbers, no servers."""

import pytest

from bench import scaleout
from bench.cgroups import quota_used

pytestmark = pytest.mark.unit


def _round(order: list[int], rates: dict[int, float], used: dict[int, list[float]]) -> dict[str, object]:
    cells = {
        str(n): {
            "rps": rates[n],
            "p99": 100.0,
            "errors": 0,
            "quota_used": used[n],
            "throttled": [0.5] * n,
            "cpu_ms": 2.5 * n,
        }
        for n in order
    }
    return {"order": order, "cells": cells}


def test_every_cell_runs_once_in_every_position_over_as_many_rounds_as_cells() -> None:
    # given the four cells / when four rounds are ordered
    orders = [scaleout.rotated([1, 2, 3, 4], number) for number in range(4)]
    # then no round repeats the order and each cell takes each position once (first included)
    assert orders[0] == [1, 2, 3, 4]
    assert orders[1] == [2, 3, 4, 1]
    for position in range(4):
        assert sorted(order[position] for order in orders) == [1, 2, 3, 4]


def test_the_quota_used_is_cpu_time_over_wall_time_and_cap() -> None:
    assert quota_used(usage_seconds=2.4, wall_seconds=10.0, cores=0.25) == pytest.approx(0.96)
    assert quota_used(usage_seconds=1.0, wall_seconds=0.0, cores=0.25) == 0.0


def test_the_summary_keeps_every_round_and_takes_medians_and_the_least_quota_used() -> None:
    # given three rounds in rotated order
    used = {1: [0.97], 2: [0.96, 0.93]}
    rounds = [
        _round([1, 2], {1: 100.0, 2: 190.0}, used),
        _round([2, 1], {1: 104.0, 2: 196.0}, {1: [0.99], 2: [0.98, 0.80]}),
        _round([1, 2], {1: 98.0, 2: 200.0}, used),
    ]
    # when they are summarised
    result = scaleout.summarise(rounds)
    # then the medians per N, the least quota used by any server (median over rounds), every round
    assert result["rps"] == {"1": 100.0, "2": 196.0}
    assert result["quota_used"] == {"1": 0.97, "2": 0.93}
    assert result["cpu_ms"] == {"1": 2.5, "2": 5.0}
    assert result["rounds"] == rounds
    assert scaleout.measurement_errors(result) == []


def test_an_efficiency_above_1_05_is_a_measurement_error() -> None:
    # given a planted result where four servers served more than four times one (the old report's 5.5x)
    result = {"rps": {"1": 76.0, "2": 190.0, "3": 276.0, "4": 418.0}, "quota_used": {"1": 0.97}}
    # when it is checked
    errors = scaleout.measurement_errors(result)
    # then each super-linear cell is named
    assert len(errors) == 3
    assert errors[0].startswith("2 servers: efficiency 1.250 > 1.05")
    assert errors[2].startswith("4 servers: efficiency 1.375 > 1.05")


def test_an_efficiency_of_exactly_1_05_passes_and_a_hair_above_fails() -> None:
    assert scaleout.measurement_errors({"rps": {"1": 100.0, "2": 210.0}}) == []
    assert len(scaleout.measurement_errors({"rps": {"1": 100.0, "2": 210.2}})) == 1


def test_a_baseline_server_that_did_not_use_its_quota_is_a_measurement_error() -> None:
    # given one server that used 76 % of its quota: held back by something else
    result = {"rps": {"1": 76.0, "2": 150.0}, "quota_used": {"1": 0.76, "2": 0.99}}
    # then the baseline is refused
    errors = scaleout.measurement_errors(result)
    assert errors == [
        "the one-server baseline used 76% of its quota (under 90%): it was held back by something "
        "else, so N x it is no scale-out"
    ]


def test_the_report_shows_every_round_its_order_and_the_errors() -> None:
    # given a measured result with a super-linear cell
    rounds = [
        _round([1, 2], {1: 100.0, 2: 230.0}, {1: [0.97], 2: [0.96, 0.95]}),
        _round([2, 1], {1: 100.0, 2: 230.0}, {1: [0.97], 2: [0.96, 0.95]}),
    ]
    result = scaleout.summarise(rounds)
    result["measurement_errors"] = scaleout.measurement_errors(result)
    # when the report's section is written
    text = scaleout.markdown(result)
    # then each round is a row with its order and each server's share of its quota
    assert "| 1 | 1 → 2 | 100 (97%) | 230 (96%, 95%) |" in text
    assert "| 2 | 2 → 1 | 100 (97%) | 230 (96%, 95%) |" in text
    assert "**Measurement errors (the run fails):**" in text
    assert "- 2 servers: efficiency 1.150 > 1.05" in text
    assert "| 2 | 230 | 2.30x | 1.15 | 95% | 5.00 | 100.0 | 0 |" in text


def test_no_scaleout_measured_is_no_measurement_error() -> None:
    # a quick run measures none, and a machine without a writable cgroup skips it
    assert scaleout.measurement_errors({}) == []
    assert scaleout.measurement_errors({"skipped": "no cgroup"}) == []
    assert scaleout.measurement_errors({"rps": {"2": 100.0}}) == [
        "no one-server figure: nothing to set the others against"
    ]
