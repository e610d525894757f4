"""The lock quorum with lock nodes paused (SIGSTOP: TCP still connects, nothing answers)."""

import logging
import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.conf import settings

from config.databases import PRIMARY_DB_ALIAS
from deploy.local import cluster
from locking.errors import LockLost, LockUnavailable
from locking.models import LockGrant
from locking.quorum import get_quorum
from locking.selectors import is_job_lock_held
from locking.services import acquire_job_lock, release_job_lock
from tests.support import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]


@contextmanager
def paused(*names: str) -> Iterator[None]:
    """Pause lock nodes for the block; always resume them and let the quorum see them again."""
    stopped = []
    try:
        for name in names:
            cluster.signal_service(name, signal.SIGSTOP)
            stopped.append(name)
        yield
    finally:
        for name in stopped:
            cluster.signal_service(name, signal.SIGCONT)
        time.sleep(settings.LOCK_NODE_RETRY_INTERVAL)  # past the nodes' rest, so the next call tries them
        get_quorum().inspect("after-pause")


@pytest.fixture
def lock_name() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


def test_one_paused_node_of_three_leaves_a_working_lock_logged_once(lock_name, caplog):
    # given
    caplog.set_level(logging.WARNING, logger="locking.quorum")
    with paused("redis-lock-2"):
        # when: twenty acquire/check/release cycles with the node hung
        started = time.monotonic()
        results = []
        for round_ in range(20):
            lock = acquire_job_lock(f"{lock_name}-{round_}", ttl=2, audit=False, fence=False)
            assert lock is not None
            results.append(is_job_lock_held(lock.name))
            results.append(release_job_lock(lock))
        elapsed = time.monotonic() - started
    # then: every call worked; 60 calls that each waited out the hung node would take 60
    # timeouts, these took less than half of that; and the outage was logged once
    assert all(results)
    assert elapsed < 60 * settings.LOCK_SOCKET_TIMEOUT / 2
    paused_port = f":{cluster.Settings().lock_redis_ports[1]} "
    messages = [record.getMessage() for record in caplog.records]
    assert len([m for m in messages if paused_port in m and "is unavailable" in m]) == 1


def test_renewal_survives_a_paused_node(lock_name):
    # given
    lock = acquire_job_lock(lock_name, ttl=1)
    assert lock is not None
    # when
    with paused("redis-lock-3"):
        time.sleep(2.5)
        lock.ensure_held()
    # then
    assert lock.renewals >= 5
    assert release_job_lock(lock) is True


def test_two_paused_nodes_of_three_make_acquire_refuse(lock_name):
    # given two hung nodes, when acquiring, then "unavailable", not "held by someone else"
    with paused("redis-lock-2", "redis-lock-3"), pytest.raises(LockUnavailable, match="no quorum"):
        acquire_job_lock(lock_name, ttl=1)
    # and the lock is free again within one TTL of the nodes coming back (the paused nodes
    # run the refused attempt's queued SET when they resume; it expires with its TTL)
    lock = wait_until(
        lambda: acquire_job_lock(lock_name, ttl=1),
        timeout=1.5,
        message="the lock was not free within 1.5 s of the nodes' return",
    )
    release_job_lock(lock)


def test_renewal_that_cannot_keep_a_quorum_loses_the_lock_and_says_so(lock_name):
    # given
    lost: list[object] = []
    lock = acquire_job_lock(lock_name, ttl=0.6, on_lost=lost.append)
    assert lock is not None
    # when: two nodes hang for longer than the lock's validity
    with paused("redis-lock-2", "redis-lock-3"):
        time.sleep(0.9)
    # then
    with pytest.raises(LockLost, match="could not reach a quorum"):
        lock.ensure_held()
    assert lost == [lock]
    assert LockGrant.objects.using(PRIMARY_DB_ALIAS).get(owner=lock.owner).outcome == LockGrant.Outcome.LOST
    assert release_job_lock(lock) is False
