"""Beat's own scheduler after a clock step: sends go to the real broker Redis (a queue of this
test's own, read back and deleted), the scheduler's clock is injected through ``TickSchedule``'s
``nowfun`` (the hook Celery gives every schedule), and its schedule file is real."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from celery import Celery
from django.conf import settings
from kombu import Connection

from jobs.schedules import TickSchedule, TickScheduler

pytestmark = pytest.mark.integration

INTERVAL = 60.0
START = datetime(2026, 3, 8, 10, 0, 5, tzinfo=UTC)  # 5 s into a slot
AHEAD = timedelta(minutes=5)


# What each test's clock reads, by clock name: beat keeps its schedule in a shelve file and
# reads back copies of it, so every copy of a clock must read the same time.
_NOW: dict[str, datetime] = {}


class Clock:
    """A beat's wall clock (module-level, so that the schedule file can pickle it)."""

    def __init__(self, now: datetime) -> None:
        self.name = uuid.uuid4().hex
        self.now = now

    @property
    def now(self) -> datetime:
        return _NOW[self.name]

    @now.setter
    def now(self, value: datetime) -> None:
        _NOW[self.name] = value

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def queue():
    """A queue no worker reads; its messages and kombu's binding for it are deleted afterwards."""
    name = f"test-beat-clock-{uuid.uuid4().hex[:10]}"
    # kombu's own client of the broker (through its Sentinels when it has them), on the test
    # settings' broker database
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    broker = Connection(settings.CELERY_BROKER_URL, transport_options=options)
    client = broker.default_channel.client  # type: ignore[attr-defined]  # a Redis channel has one
    yield client, name
    client.delete(name)
    for key in client.scan_iter(match="_kombu.binding.*", count=100):
        for member in client.smembers(key):
            if name.encode() in member:
                client.srem(key, member)
    broker.close()


@pytest.fixture
def beat(tmp_path, queue):
    """Start a beat (``beat(clock)``) on this test's schedule file and queue; all closed at the end."""
    started: list[TickScheduler] = []

    def start(clock: Clock) -> TickScheduler:
        app = Celery("beat-clock-test", broker=settings.CELERY_BROKER_URL, set_as_current=False)
        app.conf.result_expires = None  # no result backend: no cleanup entry of Celery's own
        app.conf.broker_transport_options = settings.CELERY_BROKER_TRANSPORT_OPTIONS  # Sentinel's master
        app.conf.beat_schedule = {
            "clock-step": {
                "task": "tests.beat-clock-step",  # registered nowhere: nothing runs it
                "schedule": TickSchedule(INTERVAL, nowfun=clock, app=app),
                "options": {"queue": queue[1]},
            }
        }
        scheduler = TickScheduler(app=app, schedule_filename=str(tmp_path / "schedule"))
        started.append(scheduler)
        return scheduler

    yield start
    for scheduler in started:
        scheduler.close()


def _run(beat: TickScheduler, clock: Clock, sent: list[datetime], queue) -> None:
    """Let beat do what it would at this moment (it sends one due entry per tick)."""
    client, name = queue
    for _ in range(5):
        if beat.tick() != 0:
            break
    stamped = [_tick_of(raw) for raw in reversed(client.lrange(name, 0, -1))]
    new = stamped[len(sent) :]
    assert all(tick <= clock.now for tick in new), f"sent early at {clock.now}: {new}"
    sent.extend(new)


def _tick_of(raw: bytes) -> datetime:
    message = json.loads(raw)
    _args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
    return datetime.fromisoformat(kwargs["tick"])


def minute(n: int) -> datetime:
    """The start of the ``n``-th one-minute slot after START's."""
    return START.replace(second=0) + timedelta(minutes=n)


def test_after_its_clock_is_stepped_back_beat_sends_the_current_slot_at_once_and_the_next_on_time(
    beat, queue
):
    # given: a beat (a new entry counts as sent in its first slot) that sent the next slot, then
    # ran five minutes ahead and sent "its" slot there (which the workers refuse as early)
    clock, sent = Clock(START), list[datetime]()
    scheduler = beat(clock)
    for moment in (START, START + timedelta(minutes=1), START + timedelta(minutes=1) + AHEAD):
        clock.now = moment
        _run(scheduler, clock, sent, queue)
    assert sent == [minute(1), minute(6)]

    # when: its clock is stepped back to the real time, then goes on
    for moment in (START + timedelta(minutes=2), START + timedelta(minutes=3)):
        clock.now = moment
        _run(scheduler, clock, sent, queue)

    # then: it sent the slot it is in at once (not five minutes later), then the next at its start
    assert sent == [minute(1), minute(6), minute(2), minute(3)]


def test_a_beat_restarted_after_its_clock_was_stepped_back_sends_the_current_slot_at_once(beat, queue):
    # given: a beat that ran five minutes ahead, sent there and stopped (its file keeps that run)
    ahead, sent = Clock(START + AHEAD), list[datetime]()
    first = beat(ahead)
    for moment in (START + AHEAD, START + timedelta(minutes=1) + AHEAD):
        ahead.now = moment
        _run(first, ahead, sent, queue)
    first.close()
    assert sent == [minute(6)]

    # when: it starts again from the same file with the clock put right
    right = Clock(START + timedelta(minutes=1))
    _run(beat(right), right, sent, queue)

    # then: it sends the current slot at once instead of waiting five minutes
    assert sent == [minute(6), minute(1)]


def test_a_beat_whose_clock_was_behind_and_is_stepped_forward_sends_the_current_slot_at_once(beat, queue):
    # given: a beat running five minutes behind (it sends slots that already ran: the ledger
    # makes them duplicates)
    clock, sent = Clock(START - AHEAD), list[datetime]()
    scheduler = beat(clock)
    for moment in (START - AHEAD, START - AHEAD + timedelta(minutes=1)):
        clock.now = moment
        _run(scheduler, clock, sent, queue)
    assert sent == [minute(-4)]

    # when: its clock is stepped forward to the real time, then goes on
    for moment in (START + timedelta(minutes=1), START + timedelta(minutes=2)):
        clock.now = moment
        _run(scheduler, clock, sent, queue)

    # then: the slot it is in at once, then the next at its start
    assert sent == [minute(-4), minute(1), minute(2)]
