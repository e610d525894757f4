"""Ticks are checked against the database's clock: a beat whose clock is wrong neither sends a
recurring message early nor makes real ticks look missed (the beat's clock is injected through
``TickSchedule``'s ``nowfun``, the hook Celery gives every schedule)."""

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from config.databases import PRIMARY_DB_ALIAS
from jobs.models import JobRun, Outcome
from jobs.schedules import TickSchedule, tick_of
from jobs.selectors import database_now
from jobs.services import job_execute
from messaging.jobs import recurring_messages_run
from messaging.models import Message
from tests.integration.messaging.factories import ChurchFactory, ContactFactory, RecurringMessageFactory

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SKEW = timedelta(minutes=5)


def beat_tick(skew: timedelta) -> str:
    """The tick a beat whose clock is ``skew`` off would stamp on its send now."""
    schedule = TickSchedule(60.0, nowfun=lambda: timezone.now() + skew)
    return schedule.current_tick().isoformat()


@pytest.fixture
def recurring_job(make_job, job_settings):
    job_settings.JOBS_CATCH_UP_WINDOW_SECONDS = 600.0
    return make_job(lambda ctx: recurring_messages_run(ctx=ctx, batch_size=10))


def runs(job, outcome=None):
    rows = JobRun.objects.using(PRIMARY_DB_ALIAS).filter(job=job.name)
    return list(rows.filter(outcome=outcome) if outcome else rows)


def test_a_beat_five_minutes_ahead_sends_nothing_early_and_no_tick_is_missed(recurring_job):
    # given: a recurring message due in two minutes, and the ticks so far run by the other beats
    now = database_now()
    current = tick_of(now, 60)
    church = ChurchFactory.create()
    ContactFactory.create_batch(2, church=church)
    soon = RecurringMessageFactory.create(
        church=church, cron="* * * * *", next_run_at=current + timedelta(minutes=2)
    )
    for minutes in (3, 2, 1, 0):
        assert (
            job_execute(job=recurring_job, tick=current - timedelta(minutes=minutes)).outcome
            == Outcome.SUCCESS
        )

    # when: a beat whose clock is five minutes ahead delivers "its" current tick
    report = job_execute(job=recurring_job, tick=datetime.fromisoformat(beat_tick(SKEW)))

    # then: refused and recorded; nothing was sent early and the schedule did not move
    assert report.outcome == Outcome.SKIPPED_EARLY
    assert [run.tick for run in runs(recurring_job, Outcome.SKIPPED_EARLY)] == [current + SKEW]
    assert not Message.objects.using(PRIMARY_DB_ALIAS).filter(recurring_message=soon).exists()
    soon.refresh_from_db()
    assert soon.next_run_at == current + timedelta(minutes=2)
    # and the next real tick, delivered when it comes (the database clock a minute on), runs as
    # usual, sending the message then: no tick was recorded missed
    next_tick = current + timedelta(minutes=1)
    later = job_execute(job=recurring_job, tick=next_tick, now=next_tick + timedelta(seconds=1))
    assert later.outcome == Outcome.SUCCESS
    assert runs(recurring_job, Outcome.SKIPPED_MISSED) == []
    ticks = sorted(
        run.tick for run in runs(recurring_job, Outcome.SUCCESS) if run.tick >= current - timedelta(minutes=3)
    )
    assert ticks == [current + timedelta(minutes=m) for m in (-3, -2, -1, 0, 1)]


def test_a_beat_five_minutes_behind_runs_nothing_twice_and_skips_nothing(recurring_job):
    # given: the last five ticks run by the beats with the right time
    current = tick_of(database_now(), 60)
    for minutes in (5, 4, 3, 2, 1, 0):
        job_execute(job=recurring_job, tick=current - timedelta(minutes=minutes))

    # when: a beat whose clock is five minutes behind delivers "its" current tick
    report = job_execute(job=recurring_job, tick=datetime.fromisoformat(beat_tick(-SKEW)))

    # then: that tick had run already; each tick ran once and none is missed
    assert report.outcome == Outcome.SKIPPED_DUPLICATE
    ticks = sorted(run.tick for run in runs(recurring_job, Outcome.SUCCESS) if run.tick >= current - SKEW)
    assert ticks == [current - timedelta(minutes=m) for m in (5, 4, 3, 2, 1, 0)]
    assert runs(recurring_job, Outcome.SKIPPED_MISSED) == []


def test_a_tick_within_the_tolerance_runs(make_job, job_settings):
    # given: a tolerance that covers a beat a minute ahead
    job_settings.JOBS_TICK_TOLERANCE_SECONDS = 90.0
    ran = []
    job = make_job(lambda ctx: ran.append(ctx.tick))
    ahead = tick_of(database_now(), 60) + timedelta(minutes=1)
    # when
    report = job_execute(job=job, tick=ahead)
    # then
    assert report.outcome == Outcome.SUCCESS
    assert ran == [ahead]
