import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from replicas.context import current_state, note_write, primary_is_forced, unit_of_work, use_primary_db
from replicas.writes import is_write

pytestmark = pytest.mark.unit


def test_nested_use_primary_db_keeps_the_outer_block_forced():
    # given / when an inner block ends inside an outer one
    with use_primary_db:
        with use_primary_db():
            assert primary_is_forced()
        # then the outer block is still forced (multidb's flag would have been cleared here)
        assert primary_is_forced()
    assert not primary_is_forced()


def test_use_primary_db_as_a_decorator_nests_and_survives_exceptions():
    # given
    @use_primary_db
    def inner() -> bool:
        return primary_is_forced()

    @use_primary_db
    def outer() -> tuple[bool, bool]:
        first = inner()
        return first, primary_is_forced()

    @use_primary_db
    def failing() -> None:
        raise RuntimeError("boom")

    # when / then
    assert outer() == (True, True)
    with pytest.raises(RuntimeError):
        failing()
    assert not primary_is_forced()


def test_a_unit_of_work_does_not_inherit_or_leak_routing_state_on_a_reused_thread():
    # given one worker thread serving two requests in turn
    def first_request() -> tuple[bool, bool]:
        with unit_of_work() as state:
            note_write()
            use_primary_db.__enter__()  # a view that never leaves its block
            return state.wrote_at is not None, primary_is_forced()

    def second_request() -> tuple[bool, bool]:
        with unit_of_work() as state:
            return state.wrote_at is not None, primary_is_forced()

    with ThreadPoolExecutor(max_workers=1) as pool:
        # when
        first = pool.submit(first_request).result()
        second = pool.submit(second_request).result()
        base_after = pool.submit(lambda: (current_state().wrote_at, primary_is_forced())).result()
    # then
    assert first == (True, True)
    assert second == (False, False)
    assert base_after == (None, False)


def test_a_write_in_the_base_context_sends_reads_to_the_primary_only_for_the_window():
    # given a thread outside any request
    def run() -> tuple[bool, bool]:
        note_write()
        state = current_state()
        return state.wrote_recently(60.0), state.wrote_recently(0.0)

    with ThreadPoolExecutor(max_workers=1) as pool:
        within, after = pool.submit(run).result()
    # then
    assert within is True
    assert after is False


@pytest.mark.parametrize(
    ("sql", "writes"),
    [
        ('INSERT INTO "t" VALUES (1)', True),
        ('  update "t" SET a = 1', True),
        ('DELETE FROM "t"', True),
        ("WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x", True),
        ('SELECT "t"."id" FROM "t"', False),
        ('SELECT "t"."id" FROM "t" FOR UPDATE', False),
        ('SAVEPOINT "s1"', False),
        ('RELEASE SAVEPOINT "s1"', False),
        ("ROLLBACK", False),
    ],
)
def test_only_statements_that_change_data_count_as_writes(sql, writes):
    assert is_write(sql) is writes


def test_a_kept_position_is_fetched_once_at_first_need_and_the_larger_one_wins():
    # given a unit with a cookie position and a position kept elsewhere (the principal's)
    calls = []

    def kept() -> int:
        calls.append(1)
        return 900

    with unit_of_work(min_lsn=500, window_seconds=5.0) as state:
        state.min_lsn_loader = kept
        assert calls == []  # nothing asked before a read needs it
        # when a read needs it, twice
        first, second = state.needs_lsn(time.time()), state.needs_lsn(time.time())
    # then it was fetched once and the larger position holds
    assert (first, second, len(calls)) == (900, 900, 1)


def test_a_smaller_kept_position_does_not_replace_the_cookies():
    with unit_of_work(min_lsn=500, window_seconds=5.0) as state:
        state.min_lsn_loader = lambda: 100
        assert state.needs_lsn(time.time()) == 500
