import pytest

from replicas.lsn import format_lsn, parse_lsn
from replicas.monitor import (
    HEALTHY,
    LAGGING,
    NOT_A_REPLICA,
    UNKNOWN,
    classify,
    estimate_lag_ms,
    replayable_position,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("text", ["0/0", "0/3000148", "16/B374D848", "FFFFFFFF/FFFFFFFF"])
def test_an_lsn_survives_parsing_and_formatting(text):
    # given / when
    position = parse_lsn(text)
    # then
    assert format_lsn(position) == text


def test_lsns_compare_as_wal_positions():
    # given positions whose text sorts the other way
    earlier, later = parse_lsn("9/FFFFFFFF"), parse_lsn("A/0")
    # then
    assert later - earlier == 1


@pytest.mark.parametrize("text", ["", "3000148", "x/1", "1/y"])
def test_a_malformed_lsn_is_refused(text):
    with pytest.raises(ValueError):
        parse_lsn(text)


def test_a_replica_at_the_primarys_newest_position_has_no_lag_however_old_the_position():
    # given an idle primary: the same position for ten minutes
    history = [(0.0, 500), (300.0, 500), (600.0, 500)]
    # when the replica has replayed it
    lag = estimate_lag_ms(history=history, replay_lsn=500, now=600.5)
    # then there is no lag (now() - pg_last_xact_replay_timestamp() would say ten minutes)
    assert lag == 0.0


def test_lag_is_the_age_of_the_oldest_sample_the_replica_has_not_replayed():
    # given the primary moved on at t=10 and t=11; the replica stopped at 500
    history = [(9.0, 500), (10.0, 700), (11.0, 900)]
    # when
    lag = estimate_lag_ms(history=history, replay_lsn=500, now=11.25)
    # then the WAL written by t=10 has been missing for 1.25 s
    assert lag == pytest.approx(1250.0)


def test_a_replica_just_behind_the_newest_sample_has_the_lag_since_that_sample():
    # given a busy primary: the replica trails the sample taken a moment ago
    history = [(10.0, 500), (11.0, 900)]
    # when
    lag = estimate_lag_ms(history=history, replay_lsn=899, now=11.0005)
    # then
    assert lag == pytest.approx(0.5)


def test_a_replica_behind_every_sample_is_at_least_as_late_as_the_oldest():
    history = [(5.0, 600), (6.0, 700)]
    assert estimate_lag_ms(history=history, replay_lsn=100, now=7.0) == pytest.approx(2000.0)


@pytest.mark.parametrize(
    ("in_recovery", "lag_ms", "expected"),
    [
        (True, 0.0, HEALTHY),
        (True, 100.0, HEALTHY),
        (True, 100.1, LAGGING),
        (True, None, UNKNOWN),
        (False, 0.0, NOT_A_REPLICA),
    ],
)
def test_a_replica_serves_reads_only_in_recovery_and_within_the_lag_threshold(in_recovery, lag_ms, expected):
    assert classify(in_recovery=in_recovery, lag_ms=lag_ms, max_lag_ms=100) == expected


def test_an_unreplayed_tail_shorter_than_a_wal_page_counts_as_replayed():
    # given all flushed WAL received, the last record only half flushed by the primary
    assert replayable_position(replay_lsn=1000, receive_lsn=1040, paused=False) == 1040


def test_a_paused_replica_or_a_long_unreplayed_tail_gets_no_credit():
    assert replayable_position(replay_lsn=1000, receive_lsn=1040, paused=True) == 1000
    assert replayable_position(replay_lsn=1000, receive_lsn=1000 + 8192, paused=False) == 1000
    assert replayable_position(replay_lsn=1000, receive_lsn=None, paused=False) == 1000
