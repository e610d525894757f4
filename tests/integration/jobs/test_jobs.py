"""Messaging's job bodies through the real executor: recurring messages (time zones, DST, batches,
re-runs) and phone-linking recovery (backoff, attempts, failure)."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from config.databases import PRIMARY_DB_ALIAS
from jobs.models import JobRun, Outcome
from jobs.services import job_execute
from messaging.gateway import GatewayError, OutboundSms
from messaging.jobs import phone_links_recover, recurring_messages_run
from messaging.models import DevelopmentSms, Message, PhoneLink
from messaging.recurring.services import recurring_message_next_run
from tests.integration.messaging.factories import (
    ChurchFactory,
    ContactFactory,
    PhoneLinkFactory,
    RecurringMessageFactory,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def recurring_job(make_job, job_settings):
    job_settings.JOBS_CATCH_UP_WINDOW_SECONDS = 600.0
    return make_job(lambda ctx: recurring_messages_run(ctx=ctx, batch_size=2))


def outbound(recurring_message):
    return list(
        Message.objects.using(PRIMARY_DB_ALIAS)
        .filter(recurring_message=recurring_message)
        .order_by("occurrence", "contact_id")
        .values_list("occurrence", "contact_id")
    )


@pytest.mark.parametrize(
    ("change", "created_at", "before", "after", "following"),
    [
        # clocks move forward on 2026-03-08 (EST -> EDT): 09:30 local is 14:30, then 13:30 UTC
        ("spring", "2026-03-07 12:00", "2026-03-07 14:30", "2026-03-08 13:30", "2026-03-09 13:30"),
        # clocks move back on 2026-11-01 (EDT -> EST): 09:30 local is 13:30, then 14:30 UTC
        ("fall", "2026-10-31 12:00", "2026-10-31 13:30", "2026-11-01 14:30", "2026-11-02 14:30"),
    ],
)
def test_a_recurring_message_fires_at_the_same_local_time_across_a_dst_change(
    recurring_job, change, created_at, before, after, following
):
    # given a New York church with 5 contacts (one opted out) and a message at 09:30 local
    # daily, scheduled the day before the clocks change
    church = ChurchFactory.create(time_zone="America/New_York")
    contacts = ContactFactory.create_batch(4, church=church)
    ContactFactory.create(church=church, opted_out=True)
    first = recurring_message_next_run(cron="30 9 * * *", time_zone=church.time_zone, after=utc(created_at))
    message = RecurringMessageFactory.create(church=church, cron="30 9 * * *", next_run_at=first)
    assert first == utc(before)

    # when the job runs the tick of each occurrence, and the minute before each
    for occurrence in (utc(before), utc(after)):
        job_execute(job=recurring_job, tick=occurrence - timedelta(minutes=1))
        job_execute(job=recurring_job, tick=occurrence)

    # then each day's occurrence went to the 4 opted-in contacts once, at 09:30 local both days
    occurrences = sorted({occurrence for occurrence, _ in outbound(message)})
    assert occurrences == [utc(before), utc(after)]
    assert {o.astimezone(ZoneInfo("America/New_York")).strftime("%H:%M") for o in occurrences} == {"09:30"}
    assert len(outbound(message)) == 2 * len(contacts)
    message.refresh_from_db()
    assert message.next_run_at == utc(following)
    # and the run recorded what it did (batches of 2 contacts, each through the fence)
    run = JobRun.objects.get(job=recurring_job.name, tick=utc(after), outcome=Outcome.SUCCESS)
    assert run.counts == {"messages_created": 4, "occurrences": 1}


def test_re_running_an_occurrence_creates_nothing(recurring_job, job_settings):
    # given an occurrence that was already created (e.g. by a run that then lost its lock)
    church = ChurchFactory.create(time_zone="Europe/Berlin")
    ContactFactory.create_batch(3, church=church)
    tick = utc("2026-10-25 08:00")
    message = RecurringMessageFactory.create(church=church, cron="0 9 * * *", next_run_at=tick)
    job_execute(job=recurring_job, tick=tick)
    before = outbound(message)
    assert len(before) == 3

    # when the schedule is put back to the same occurrence and a new tick runs it again
    type(message).objects.filter(pk=message.pk).update(next_run_at=tick)
    job_execute(job=recurring_job, tick=tick + timedelta(minutes=1))

    # then no message was added: the unique (recurring message, occurrence, contact) held
    assert outbound(message) == before
    rerun = JobRun.objects.get(
        job=recurring_job.name, tick=tick + timedelta(minutes=1), outcome=Outcome.SUCCESS
    )
    assert rerun.counts == {"messages_existing": 3, "occurrences": 1}


def test_occurrences_older_than_the_catch_up_window_are_skipped_not_sent(recurring_job, job_settings):
    # given a message due every minute whose schedule is an hour behind (workers were down)
    job_settings.JOBS_CATCH_UP_WINDOW_SECONDS = 120.0
    church = ChurchFactory.create(time_zone="UTC")
    ContactFactory.create(church=church)
    tick = utc("2026-06-01 12:00")
    message = RecurringMessageFactory.create(
        church=church, cron="* * * * *", next_run_at=tick - timedelta(hours=1)
    )

    # when the tick runs
    job_execute(job=recurring_job, tick=tick)

    # then only the occurrences inside the window were sent, and the schedule is current
    assert [o for o, _ in outbound(message)] == [
        tick - timedelta(minutes=2),
        tick - timedelta(minutes=1),
        tick,
    ]
    message.refresh_from_db()
    assert message.next_run_at == tick + timedelta(minutes=1)


class FailingGateway:
    supports_idempotency_key = False

    def __init__(self) -> None:
        self.calls: list[str] = []

    def send(self, sms: OutboundSms) -> str:
        self.calls.append(sms.to)
        raise GatewayError("503 from provider")


def test_stuck_phone_links_are_retried_with_backoff_then_marked_failed(make_job, job_settings):
    # given a link pending for longer than the stuck age, and a provider that keeps failing
    job_settings.MESSAGING_PHONE_LINK_STUCK_AFTER_SECONDS = 60.0
    job_settings.MESSAGING_PHONE_LINK_MAX_ATTEMPTS = 3
    job_settings.MESSAGING_PHONE_LINK_BACKOFF_SECONDS = 1.0
    job_settings.JOBS_MAX_ATTEMPTS = 1
    gateway = FailingGateway()
    # The body's clock, set by the test: "at once" and "after the backoff" do not depend on how
    # fast a busy machine runs the job (an attempt is stamped with the real time it happened).
    clock = {"now": timezone.now()}
    job = make_job(lambda ctx: phone_links_recover(ctx=ctx, gateway=gateway, now=clock["now"]))
    stuck = PhoneLinkFactory.create(state=PhoneLink.State.PENDING)
    fresh = PhoneLinkFactory.create(state=PhoneLink.State.PENDING)
    PhoneLink.objects.filter(pk=stuck.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    tick = utc("2026-06-01 12:00")

    # when the job runs, again at once (inside the backoff), then after each backoff
    job_execute(job=job, tick=tick)
    job_execute(job=job, tick=tick + timedelta(minutes=1))
    stuck.refresh_from_db()
    assert (stuck.state, stuck.attempts, stuck.last_error) == ("pending", 1, "503 from provider")
    for minute, pause in ((2, 1.05), (3, 2.05)):
        clock["now"] = timezone.now() + timedelta(seconds=pause)
        job_execute(job=job, tick=tick + timedelta(minutes=minute))

    # then it was tried 3 times in all, then marked failed with the error; the fresh one untouched
    stuck.refresh_from_db()
    fresh.refresh_from_db()
    assert gateway.calls == [stuck.phone] * 3
    assert (stuck.state, stuck.attempts, stuck.last_error) == ("failed", 3, "503 from provider")
    assert (fresh.state, fresh.attempts) == ("pending", 0)
    waited = JobRun.objects.get(job=job.name, tick=tick + timedelta(minutes=1))
    assert waited.counts == {"waiting": 1}

    # and running again changes nothing (a failed link is not pending any more)
    job_execute(job=job, tick=tick + timedelta(minutes=4))
    assert len(gateway.calls) == 3


def test_a_stuck_phone_link_is_linked_through_the_development_gateway(make_job, job_settings):
    # given a stuck link and the development gateway (it records what it would send)
    job_settings.MESSAGING_PHONE_LINK_STUCK_AFTER_SECONDS = 0.0
    link = PhoneLinkFactory.create(state=PhoneLink.State.PENDING)
    job = make_job(lambda ctx: phone_links_recover(ctx=ctx))

    # when the job runs
    job_execute(job=job, tick=utc("2026-06-01 12:00"))

    # then the link is linked, after one attempt that went through the gateway
    link.refresh_from_db()
    assert (link.state, link.attempts, link.last_error) == ("linked", 1, "")
    assert DevelopmentSms.objects.filter(to=link.phone).count() == 1


def test_the_body_reads_its_input_from_the_primary(make_job):
    # given a due recurring message written a moment ago, and a test that forbids any query
    # to the replica (pytest-django raises if one is made, which would fail the run)
    church = ChurchFactory.create(time_zone="UTC")
    ContactFactory.create(church=church)
    tick = utc("2026-06-01 12:00")
    message = RecurringMessageFactory.create(church=church, cron="0 12 * * *", next_run_at=tick)
    job = make_job(lambda ctx: recurring_messages_run(ctx=ctx, batch_size=10))

    # when the job runs
    report = job_execute(job=job, tick=tick)

    # then it found and sent the message from the primary
    assert report.outcome == Outcome.SUCCESS
    assert len(outbound(message)) == 1
