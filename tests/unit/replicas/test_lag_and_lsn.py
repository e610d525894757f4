import pytest

from replicas.lag import (
    HEALTHY,
    LAGGING,
    NOT_A_REPLICA,
    UNKNOWN,
    PrimarySample,
    classify,
    estimate_lag_ms,
    replayable_position,
)
from replicas.lsn import format_lsn, parse_lsn

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


def _sample(*, insert: int, flush: int | None = None, at: float = 100.0, clock: float = 5000.0, on=True):
    return PrimarySample(
        taken_at=at, insert_lsn=insert, flush_lsn=insert if flush is None else flush, clock=clock,
        commits_flushed_first=on,
    )  # fmt: skip


def test_a_replica_at_the_primarys_insert_position_has_no_lag_however_old_its_last_commit():
    # given an idle primary: nothing committed for ten minutes, the replica has it all
    sample = _sample(insert=500, at=600.0, clock=5600.0)
    # when
    lag = estimate_lag_ms(
        sample=sample, history=[(0.0, 500), (600.0, 500)], replay_lsn=500,
        last_replayed_commit=5000.0, asked_at=600.001,
    )  # fmt: skip
    # then there is no lag (now() - pg_last_xact_replay_timestamp() would say ten minutes)
    assert lag == 0.0


def test_behind_the_insert_position_the_lag_is_the_age_of_the_newest_commit_replayed():
    # given a busy primary; the replica's newest replayed commit was made 40 ms before the sample
    sample = _sample(insert=900, flush=900, at=100.0, clock=5000.0)
    # when it is asked 2 ms after the sample
    lag = estimate_lag_ms(
        sample=sample, history=[(99.0, 100), (100.0, 900)], replay_lsn=850,
        last_replayed_commit=4999.960, asked_at=100.002,
    )  # fmt: skip
    # then it shows the primary as it was 42 ms ago (the primary's clock, never the replica's)
    assert lag == pytest.approx(42.0)


def test_with_synchronous_commit_what_is_inserted_but_not_flushed_is_no_lag():
    # given WAL inserted but not flushed (a transaction still running): invisible on the primary too
    sample = _sample(insert=900, flush=800)
    # then a replica that has replayed the flushed WAL misses nothing a reader could see
    assert (
        estimate_lag_ms(
            sample=sample, history=[], replay_lsn=800, last_replayed_commit=4000.0, asked_at=100.001
        )
        == 0.0
    )
    # but with synchronous_commit = off a commit is visible before its flush: the commit age counts
    lag = estimate_lag_ms(
        sample=_sample(insert=900, flush=800, on=False), history=[], replay_lsn=800,
        last_replayed_commit=4999.5, asked_at=100.0,
    )  # fmt: skip
    assert lag == pytest.approx(500.0)


def test_the_lag_is_never_more_than_the_age_of_the_newest_primary_position_it_has_reached():
    # given no commit for a minute, then WAL it has not replayed yet (the history says it had
    # everything the primary had 300 ms ago)
    sample = _sample(insert=900, flush=850, at=100.0, clock=5000.0)
    history = [(99.0, 500), (99.7, 700), (100.0, 900)]
    # when
    lag = estimate_lag_ms(
        sample=sample, history=history, replay_lsn=700, last_replayed_commit=4940.0, asked_at=100.0
    )
    # then
    assert lag == pytest.approx(300.0)


def test_a_paused_replica_grows_stale_with_the_primarys_commits():
    # given replay paused at the commit made at 4999.0 while the primary keeps committing
    history = [(t, 1000 + int(t * 10)) for t in (99.0, 100.0, 101.0)]
    sample = _sample(insert=history[-1][1], at=101.0, clock=5001.0)
    # when
    lag = estimate_lag_ms(
        sample=sample, history=history, replay_lsn=history[0][1], last_replayed_commit=4999.0,
        asked_at=101.001,
    )  # fmt: skip
    # then
    assert lag == pytest.approx(2001.0)


def test_a_replica_behind_with_nothing_to_date_it_by_has_no_lag_yet():
    sample = _sample(insert=900)
    assert (
        estimate_lag_ms(
            sample=sample, history=[(100.0, 900)], replay_lsn=10, last_replayed_commit=None, asked_at=100.0
        )
        is None
    )


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
