"""Ticks are epoch-aligned slots, so every beat names a slot the same way."""

from datetime import UTC, datetime, timedelta

import pytest

from config.celery import app
from jobs.schedules import TickSchedule, tick_of, ticks_between

pytestmark = pytest.mark.unit


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_moments_in_one_slot_share_its_tick_whatever_beat_sees_them():
    # given three beats waking at slightly different moments of the same minute
    moments = [at("2026-03-08 06:59:00.001"), at("2026-03-08 06:59:00.350"), at("2026-03-08 06:59:59.999")]

    # when each computes the tick
    ticks = {tick_of(moment, 60) for moment in moments}

    # then they agree on the slot's start
    assert ticks == {at("2026-03-08 06:59:00")}


def test_ticks_are_aligned_to_the_epoch_not_to_when_a_beat_started():
    # given a 5-minute interval
    # when a moment is 7 minutes past the hour
    tick = tick_of(at("2026-03-08 10:07:12"), 300)

    # then the tick is the 5-minute boundary before it, and sub-minute intervals align too
    assert tick == at("2026-03-08 10:05:00")
    assert tick_of(at("2026-03-08 10:07:13.9"), 2) == at("2026-03-08 10:07:12")


def test_a_local_time_is_converted_not_misread():
    # given the same instant expressed in a non-UTC offset
    local = datetime.fromisoformat("2026-03-08T01:59:30-05:00")

    # then its tick is the same UTC slot
    assert tick_of(local, 60) == at("2026-03-08 06:59:00")


def test_a_naive_time_is_refused():
    with pytest.raises(ValueError, match="aware"):
        tick_of(datetime(2026, 1, 1), 60)


def test_ticks_between_lists_every_slot_oldest_first_including_both_ends():
    # when listing the ticks from 10:00:30 to 10:03:00
    ticks = ticks_between(at("2026-03-08 10:00:30"), at("2026-03-08 10:03:00"), 60)

    # then the slot of the first moment starts the list and the last slot ends it
    assert ticks == [at("2026-03-08 10:00:00") + timedelta(minutes=n) for n in range(4)]


def test_schedule_is_due_once_per_slot_and_sleeps_until_the_next_one():
    # given a 60 s schedule whose clock reads 10:00:20
    now = at("2026-03-08 10:00:20")
    schedule = TickSchedule(60, nowfun=lambda: now, app=app)

    # when the last send was in the previous slot, and when it was in this one
    due_after_previous = schedule.is_due(at("2026-03-08 09:59:59"))
    due_after_this = schedule.is_due(at("2026-03-08 10:00:00.2"))

    # then only the first is due, and both wake up at the next boundary (40 s later)
    assert due_after_previous.is_due is True
    assert due_after_this.is_due is False
    assert due_after_previous.next == pytest.approx(40)
    assert due_after_this.next == pytest.approx(40)


def test_schedule_survives_beats_pickled_schedule_file():
    import pickle

    # given the schedule as beat stores it in its shelve file
    schedule = TickSchedule(2.0)

    # when read back
    restored = pickle.loads(pickle.dumps(schedule))  # noqa: S301 - our own object

    # then it is still a tick schedule with the same interval
    assert isinstance(restored, TickSchedule)
    assert restored.interval == 2.0


def test_a_last_run_not_later_than_now_is_kept_as_it_is():
    # given a 60 s schedule whose clock reads 10:00:20
    schedule = TickSchedule(60, nowfun=lambda: at("2026-03-08 10:00:20"), app=app)
    # then a last run before now (or at now) is not touched
    for last in (at("2026-03-08 09:58:00"), at("2026-03-08 10:00:01"), at("2026-03-08 10:00:20")):
        assert schedule.last_run_brought_back(last) == last


def test_a_last_run_later_in_this_slot_counts_as_this_slot_sent():
    # given a beat whose clock was a few seconds ahead when it sent this slot, then stepped back
    now = at("2026-03-08 10:00:20")
    schedule = TickSchedule(60, nowfun=lambda: now, app=app)
    # when
    brought_back = schedule.last_run_brought_back(at("2026-03-08 10:00:25"))
    # then this slot is not sent again; the next one is due at its start
    assert brought_back == now
    assert schedule.is_due(brought_back).is_due is False
    assert schedule.is_due(brought_back).next == pytest.approx(40)


@pytest.mark.parametrize("ahead", [timedelta(seconds=45), timedelta(minutes=5), timedelta(days=3)])
def test_a_last_run_in_a_later_slot_makes_this_slot_due_at_once(ahead):
    # given a beat whose clock was ahead when it last sent (a slot the real clock has not reached)
    now = at("2026-03-08 10:00:20")
    schedule = TickSchedule(60, nowfun=lambda: now, app=app)
    last = now + ahead
    assert schedule.is_due(last).is_due is False  # as beat kept it: silent until the clock caught up
    # when
    brought_back = schedule.last_run_brought_back(last)
    # then it counts as a run in the previous slot: this slot is due now, and only this one
    assert brought_back == at("2026-03-08 09:59:00")
    assert schedule.is_due(brought_back).is_due is True
    assert schedule.last_run_brought_back(brought_back) == brought_back
