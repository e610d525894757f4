"""A cron expression is read in the church's time zone, and stays on local time across DST."""

from datetime import UTC, datetime

import pytest

from messaging.recurring.services import recurring_message_next_run

pytestmark = pytest.mark.unit

NEW_YORK = "America/New_York"


def _daily_nine_after(after: datetime) -> datetime:
    return recurring_message_next_run(cron="0 9 * * *", time_zone=NEW_YORK, after=after)


def test_nine_local_is_fourteen_utc_before_the_march_change_and_thirteen_after():
    # given: 2026's US spring change is Sunday 8 March, 02:00 local
    saturday_morning = datetime(2026, 3, 7, 12, 0, tzinfo=UTC)  # 07:00 EST
    # when
    saturday = _daily_nine_after(saturday_morning)
    sunday = _daily_nine_after(saturday)
    monday = _daily_nine_after(sunday)
    # then
    assert saturday == datetime(2026, 3, 7, 14, 0, tzinfo=UTC)  # 09:00 EST (UTC-5)
    assert sunday == datetime(2026, 3, 8, 13, 0, tzinfo=UTC)  # 09:00 EDT (UTC-4)
    assert monday == datetime(2026, 3, 9, 13, 0, tzinfo=UTC)


def test_nine_local_moves_back_to_fourteen_utc_after_the_november_change():
    # given: 2026's fall change is Sunday 1 November, 02:00 local
    saturday_morning = datetime(2026, 10, 31, 11, 0, tzinfo=UTC)  # 07:00 EDT
    # when
    saturday = _daily_nine_after(saturday_morning)
    sunday = _daily_nine_after(saturday)
    # then
    assert saturday == datetime(2026, 10, 31, 13, 0, tzinfo=UTC)
    assert sunday == datetime(2026, 11, 1, 14, 0, tzinfo=UTC)


def test_a_wall_clock_time_skipped_by_spring_forward_runs_an_hour_later_that_day():
    # given: 02:30 does not exist in New York on 8 March 2026
    before = datetime(2026, 3, 8, 5, 0, tzinfo=UTC)  # 00:00 EST
    # when
    run = recurring_message_next_run(cron="30 2 * * *", time_zone=NEW_YORK, after=before)
    # then: 07:30 UTC is 03:30 EDT, the same instant as "02:30 EST"
    assert run == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)


def test_a_wall_clock_time_repeated_by_fall_back_runs_once():
    # given: 01:30 happens twice in New York on 1 November 2026 (05:30 and 06:30 UTC)
    before = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)
    # when
    first = recurring_message_next_run(cron="30 1 * * *", time_zone=NEW_YORK, after=before)
    second = recurring_message_next_run(cron="30 1 * * *", time_zone=NEW_YORK, after=first)
    # then
    assert first == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    assert second == datetime(2026, 11, 2, 6, 30, tzinfo=UTC)


def test_the_next_run_is_strictly_after_the_given_instant():
    # given: exactly an occurrence
    occurrence = datetime(2026, 6, 1, 13, 0, tzinfo=UTC)  # 09:00 EDT
    # when
    run = _daily_nine_after(occurrence)
    # then
    assert run == datetime(2026, 6, 2, 13, 0, tzinfo=UTC)
    assert run.tzinfo is UTC


def test_a_naive_instant_is_refused():
    with pytest.raises(ValueError, match="aware"):
        _daily_nine_after(datetime(2026, 6, 1, 12, 0))
