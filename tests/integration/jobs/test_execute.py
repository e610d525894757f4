"""One tick runs once: duplicates, a lock held elsewhere, no quorum, retries, a lost lock, catch-up.

Real lock nodes (Redis x3) and the real primary through PgBouncer; test jobs with their own
names so nothing here touches the cluster's own jobs.
"""

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connections

from config.databases import PRIMARY_DB_ALIAS
from jobs.context import JobContext
from jobs.models import JobRun, Outcome
from jobs.services import job_execute
from locking.errors import StaleLockError
from locking.models import LockFence
from locking.services import acquire_job_lock, force_release_job_lock, release_job_lock

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

TICK = datetime(2026, 3, 8, 10, 0, tzinfo=UTC)


def runs(job, **filters):
    return list(JobRun.objects.using(PRIMARY_DB_ALIAS).filter(job=job.name, **filters).order_by("tick", "id"))


def test_a_second_delivery_of_the_same_tick_is_recorded_as_duplicate_and_does_not_run(make_job):
    # given a job whose body counts its runs
    calls = []
    job = make_job(lambda ctx: calls.append(ctx.tick))

    # when the tick is delivered twice (two beats), even a second after the first finished
    first = job_execute(job=job, tick=TICK + timedelta(seconds=20))
    second = job_execute(job=job, tick=TICK)

    # then the body ran once, for the slot's start, and the ledger shows one run and one skip
    assert calls == [TICK]
    assert (first.outcome, second.outcome) == (Outcome.SUCCESS, Outcome.SKIPPED_DUPLICATE)
    assert [(r.tick, r.outcome) for r in runs(job)] == [
        (TICK, Outcome.SUCCESS),
        (TICK, Outcome.SKIPPED_DUPLICATE),
    ]
    success = runs(job, outcome=Outcome.SUCCESS)[0]
    assert success.lock_token is not None and success.finished is not None and success.server


def test_a_delivery_while_another_server_holds_the_lock_is_skipped_held(make_job):
    # given another holder of the job's lock (here: this process, as a second server would)
    calls = []
    job = make_job(lambda ctx: calls.append(ctx.tick))
    other = acquire_job_lock(job.lock_name, ttl=5)
    assert other is not None
    try:
        # when the tick is delivered
        report = job_execute(job=job, tick=TICK)
    finally:
        release_job_lock(other)

    # then nothing ran and the skip is recorded, leaving the tick to be run
    assert calls == []
    assert report.outcome == Outcome.SKIPPED_HELD
    assert [r.outcome for r in runs(job)] == [Outcome.SKIPPED_HELD]

    # and the next delivery, with the lock free, runs it
    assert job_execute(job=job, tick=TICK).outcome == Outcome.SUCCESS
    assert calls == [TICK]


def test_without_a_lock_quorum_the_job_fails_closed(make_job, settings):
    # given lock nodes of which no majority answers (nothing listens on these ports)
    settings.LOCK_REDIS_URLS = [
        "redis://127.0.0.1:26997/0",
        "redis://127.0.0.1:26998/0",
        "redis://127.0.0.1:26999/0",
    ]
    calls = []
    job = make_job(lambda ctx: calls.append(ctx.tick))

    # when the tick is delivered
    report = job_execute(job=job, tick=TICK)

    # then the body did not run and the ledger says why
    assert calls == []
    assert report.outcome == Outcome.SKIPPED_UNAVAILABLE
    [skip] = runs(job)
    assert skip.outcome == Outcome.SKIPPED_UNAVAILABLE
    assert "quorum" in skip.error


def test_missed_ticks_inside_the_window_run_once_oldest_first_and_older_ones_are_recorded_skipped(make_job):
    # given a job that last ran 20 ticks ago, and a 5-tick (300 s) catch-up window
    calls = []
    job = make_job(lambda ctx: calls.append(ctx.tick))
    job_execute(job=job, tick=TICK - timedelta(minutes=20))
    calls.clear()

    # when the next delivery arrives (beats were down for 19 ticks)
    report = job_execute(job=job, tick=TICK)

    # then the ticks of the window run, oldest first, each once
    window = [TICK - timedelta(minutes=n) for n in range(5, -1, -1)]
    assert calls == window
    assert [tick for tick, _ in report.ran] == window
    caught_up = {r.tick: r.caught_up for r in runs(job, outcome=Outcome.SUCCESS)}
    assert caught_up[TICK] is False
    assert all(caught_up[t] for t in window[:-1])
    # and the 14 older ones are recorded as skipped-missed
    missed = [r.tick for r in runs(job, outcome=Outcome.SKIPPED_MISSED)]
    assert missed == [TICK - timedelta(minutes=n) for n in range(19, 5, -1)]

    # and a late delivery of a caught-up tick runs nothing
    assert job_execute(job=job, tick=window[0]).outcome == Outcome.SKIPPED_DUPLICATE
    assert len(calls) == len(window)


def test_a_failed_tick_is_retried_after_its_backoff_and_gives_up_after_max_attempts(make_job):
    # given a job whose body always fails
    calls = []

    def body(ctx: JobContext) -> None:
        calls.append(ctx.run.attempt)
        raise RuntimeError("provider down")

    job = make_job(body)

    # when the tick is delivered, and again right away (within the backoff)
    first = job_execute(job=job, tick=TICK)
    early = job_execute(job=job, tick=TICK)

    # then it failed once, asks to be retried after the backoff, and the early delivery waited
    assert first.outcome == Outcome.FAILED and first.retry_in == pytest.approx(0.5)
    assert early.outcome == Outcome.SKIPPED_DUPLICATE
    assert calls == [1]

    # when delivered after each backoff
    for pause in (0.55, 1.05, 2.05):
        time.sleep(pause)
        job_execute(job=job, tick=TICK)

    # then it was tried 3 times in all, never concurrently, and the history keeps each attempt
    assert calls == [1, 2, 3]
    rows = runs(job, outcome=Outcome.FAILED)
    assert [(r.attempt, r.superseded) for r in rows] == [(1, True), (2, True), (3, False)]
    assert "RuntimeError: provider down" in rows[-1].error


def test_a_run_that_loses_its_lock_commits_nothing_more_and_the_tick_is_run_again(make_job):
    # given a job that writes one fenced batch, then loses its lock (an operator force-releases
    # it, advancing the fencing token), then tries a second batch
    written = []

    def body(ctx: JobContext) -> None:
        with ctx.fenced() as counts:
            LockFence.objects.using(PRIMARY_DB_ALIAS).create(
                name=f"marker-{ctx.run.attempt}-1", token=1, updated=ctx.tick
            )
            counts["batches"] += 1
        written.append(1)
        if ctx.run.attempt == 1:
            force_release_job_lock(ctx.lock.name, by="test")
        with ctx.fenced() as counts:
            LockFence.objects.using(PRIMARY_DB_ALIAS).create(
                name=f"marker-{ctx.run.attempt}-2", token=1, updated=ctx.tick
            )
            counts["batches"] += 1
        written.append(2)

    job = make_job(body)

    # when the tick runs
    report = job_execute(job=job, tick=TICK)

    # then the first batch committed, the second was refused by the fence and rolled back
    assert report.outcome == Outcome.LOST_LOCK
    assert written == [1]
    markers = set(
        LockFence.objects.using(PRIMARY_DB_ALIAS)
        .filter(name__startswith="marker-")
        .values_list("name", flat=True)
    )
    assert markers == {"marker-1-1"}
    [lost] = runs(job, outcome=Outcome.LOST_LOCK)
    assert lost.counts == {"batches": 1} and lost.last_write_at is not None
    assert "fencing token" in lost.error or "lost" in lost.error

    # when a later delivery comes after the backoff
    time.sleep(0.55)
    job_execute(job=job, tick=TICK)

    # then the tick is run again, once, as attempt 2
    [success] = runs(job, outcome=Outcome.SUCCESS)
    assert success.attempt == 2 and success.lock_token > lost.lock_token
    assert LockFence.objects.using(PRIMARY_DB_ALIAS).filter(name__startswith="marker-2").count() == 2


def test_a_run_abandoned_by_a_dead_worker_is_taken_over_by_the_next_lock_holder(make_job):
    # given a tick whose run row says "running" under an old token (its worker was SIGKILLed)
    calls = []
    job = make_job(lambda ctx: calls.append(ctx.run.attempt))
    JobRun.objects.using(PRIMARY_DB_ALIAS).create(
        job=job.name, tick=TICK, outcome=Outcome.RUNNING, server="gone", pid=1, lock_token=0, started=TICK
    )

    # when the next delivery takes the lock (with a newer token)
    report = job_execute(job=job, tick=TICK)

    # then the old attempt is closed as lost-lock and the tick runs again, once
    assert report.outcome == Outcome.SUCCESS
    assert calls == [2]
    old, new = runs(job)
    assert (old.outcome, old.superseded, new.outcome, new.attempt) == (
        Outcome.LOST_LOCK,
        True,
        Outcome.SUCCESS,
        2,
    )
    assert "abandoned" in old.error


def test_a_stale_holder_cannot_claim_a_tick(make_job):
    # given a lock grant that a newer grant has already replaced (its token is stale)
    job = make_job(lambda ctx: None)
    stale = acquire_job_lock(job.lock_name, ttl=5)
    assert stale is not None
    force_release_job_lock(job.lock_name, by="test")
    stale.lost_reason = None  # as if its renewal thread had not noticed yet (a paused process)
    stale._valid_until = time.monotonic() + 5

    # when it tries to claim the tick's ledger row behind the fence
    from jobs.services import _claim

    with pytest.raises(StaleLockError):
        _claim(job=job, tick=TICK, lock=stale, task_id="", caught_up=False)
    release_job_lock(stale)

    # then no row was written
    assert runs(job) == []


def test_the_celery_task_runs_the_stamped_tick(settings):
    from messaging.jobs import recurring_messages

    # given a beat-stamped delivery of the real recurring-messages task
    settings.JOBS_CATCH_UP_WINDOW_SECONDS = 0
    tick = datetime(2026, 3, 8, 10, 0, tzinfo=UTC)

    # when a worker runs it
    result = recurring_messages.apply(kwargs={"tick": tick.isoformat()}).get()

    # then the run is recorded for that tick
    assert result["outcome"] == Outcome.SUCCESS and result["tick"] == tick.isoformat()
    assert (
        JobRun.objects.using(PRIMARY_DB_ALIAS)
        .filter(job="recurring-messages", tick=tick, outcome="success")
        .count()
        == 1
    )


def _txid() -> int:
    with connections[PRIMARY_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT txid_current()")
        return int(cursor.fetchone()[0])


def _write_in_pairs(
    ctx: JobContext, *, prefix: str, rows: int, seen: list[int], then_fail: bool = False
) -> None:
    """Write ``rows`` markers through one group of at most two rows per transaction."""
    with ctx.fenced_group(limit=2, size=lambda counts: counts["rows"]) as batch:
        for index in range(rows):
            with batch() as counts:
                LockFence.objects.using(PRIMARY_DB_ALIAS).create(
                    name=f"{prefix}-{index}", token=1, updated=ctx.tick
                )
                counts["rows"] += 1
                seen.append(_txid())
        if then_fail:
            raise RuntimeError("provider down")


def test_small_writes_share_fenced_transactions_up_to_the_limit(make_job):
    # given a body that makes five small writes through one group of at most two rows each
    transactions: list[int] = []

    def body(ctx: JobContext) -> None:
        _write_in_pairs(ctx, prefix="group", rows=5, seen=transactions)

    job = make_job(body)
    # when
    report = job_execute(job=job, tick=TICK)
    # then: three transactions (two rows, two rows, one), every row written, every row counted
    assert report.outcome == Outcome.SUCCESS
    first, third, fifth = transactions[0], transactions[2], transactions[4]
    assert transactions == [first, first, third, third, fifth] and len({first, third, fifth}) == 3
    assert LockFence.objects.using(PRIMARY_DB_ALIAS).filter(name__startswith="group-").count() == 5
    [run] = runs(job, outcome=Outcome.SUCCESS)
    assert run.counts == {"rows": 5}


def test_an_error_in_a_group_rolls_back_its_open_transaction_only(make_job):
    # given a body that fails after its third write (the first two committed together)
    def body(ctx: JobContext) -> None:
        _write_in_pairs(ctx, prefix="failing", rows=3, seen=[], then_fail=True)

    job = make_job(body)
    # when
    report = job_execute(job=job, tick=TICK)
    # then
    assert report.outcome == Outcome.FAILED
    written = LockFence.objects.using(PRIMARY_DB_ALIAS).filter(name__startswith="failing-")
    assert sorted(written.values_list("name", flat=True)) == ["failing-0", "failing-1"]
    [failed] = runs(job, outcome=Outcome.FAILED)
    assert failed.counts == {"rows": 2}
