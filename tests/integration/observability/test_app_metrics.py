"""The apps move the project's metrics: a lock taken and released on the real lock nodes."""

import uuid

import pytest

from config import metrics
from locking.services import acquire_job_lock, release_job_lock

pytestmark = pytest.mark.integration


def _value(counter, **labels) -> float:
    return counter.labels(**labels)._value.get()


def test_a_lock_acquisition_a_refusal_and_a_release_move_the_lock_metrics():
    # given a fresh lock name and its counters
    name = f"observability-{uuid.uuid4().hex[:12]}"
    # when one holder takes it, a second is refused, and the first releases it
    first = acquire_job_lock(name, ttl=5, fence=False, audit=False)
    second = acquire_job_lock(name, ttl=5, fence=False, audit=False)
    assert first is not None
    try:
        assert second is None
    finally:
        release_job_lock(first)
    # then one acquisition and one contention are counted, and one hold time is observed
    assert _value(metrics.lock_acquisitions, lock=name, outcome="acquired") == 1
    assert _value(metrics.lock_acquisitions, lock=name, outcome="contended") == 1
    hold = metrics.lock_hold.labels(lock=name)
    assert sum(bucket.get() for bucket in hold._buckets) == 1
    assert _value(metrics.locks_lost, lock=name) == 0
