"""The lock service against the real Redis quorum and PostgreSQL (through PgBouncer)."""

import threading
import time

import pytest
from django.contrib.auth.models import Group
from django.db.models import F

from config.databases import PRIMARY_DB_ALIAS
from locking.errors import LockLost, StaleLockError
from locking.models import LockFence, LockGrant
from locking.quorum import get_quorum
from locking.selectors import get_active_job_locks, is_job_lock_held
from locking.services import (
    RENEWAL_THREAD_PREFIX,
    acquire_job_lock,
    force_release_job_lock,
    release_job_lock,
    with_job_lock,
)
from tests.support import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def renewal_threads(name: str) -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == f"{RENEWAL_THREAD_PREFIX}{name}"]


def test_a_held_lock_is_refused_to_a_second_acquirer_until_released(lock_name):
    # given
    first = acquire_job_lock(lock_name, ttl=5)
    assert first is not None
    # when
    second = acquire_job_lock(lock_name, ttl=5)
    released = release_job_lock(first)
    third = acquire_job_lock(lock_name, ttl=5)
    # then
    assert second is None
    assert released is True
    assert third is not None
    assert first.token is not None
    assert third.token == first.token + 1
    release_job_lock(third)


def test_grant_writes_token_and_audit_row_and_release_closes_it(lock_name):
    # given
    lock = acquire_job_lock(lock_name, ttl=5)
    assert lock is not None
    # when
    grant = LockGrant.objects.using(PRIMARY_DB_ALIAS).get(owner=lock.owner)
    release_job_lock(lock)
    grant.refresh_from_db()
    # then
    assert LockFence.objects.using(PRIMARY_DB_ALIAS).get(name=lock_name).token == lock.token
    assert grant.token == lock.token
    assert grant.owner == lock.owner
    assert grant.outcome == LockGrant.Outcome.RELEASED
    assert grant.released is not None
    assert grant.acquired < grant.released


def test_audit_false_writes_no_row_but_still_fences(lock_name):
    # when
    lock = acquire_job_lock(lock_name, ttl=5, audit=False)
    assert lock is not None
    release_job_lock(lock)
    # then
    assert lock.token is not None
    assert not LockGrant.objects.using(PRIMARY_DB_ALIAS).filter(name=lock_name).exists()


def test_a_grant_that_is_never_renewed_expires_and_frees_the_lock(lock_name):
    # given: a grant on the quorum with no renewal thread (as a crashed holder leaves it)
    quorum = get_quorum()
    assert quorum.acquire(lock_name, "crashed:1:owner", 300).outcome.value == "granted"
    assert acquire_job_lock(lock_name, ttl=5) is None
    # when
    time.sleep(0.4)
    lock = acquire_job_lock(lock_name, ttl=5)
    # then
    assert lock is not None
    release_job_lock(lock)


def test_renewal_keeps_a_lock_alive_over_five_times_its_ttl(lock_name):
    # given
    ttl = 1
    lock = acquire_job_lock(lock_name, ttl=ttl)
    assert lock is not None
    acquired_at = time.monotonic()
    # when: another acquirer tries, again and again, for 5.5 TTLs
    tries = refused = 0
    while time.monotonic() - acquired_at < 5.5 * ttl:
        lock.ensure_held()
        tries += 1
        refused += acquire_job_lock(lock_name, ttl=ttl) is None
        time.sleep(ttl / 4)
    # then: every try was refused, and the lock is still held: it cannot have lived 5.5 TTLs
    # past its grant without at least one renewal per TTL, however the machine scheduled the
    # renewal thread (every third of a TTL when it is on time)
    assert tries >= 5
    assert refused == tries
    assert is_job_lock_held(lock_name)
    assert lock.renewals >= 5
    grant = LockGrant.objects.using(PRIMARY_DB_ALIAS).get(owner=lock.owner)
    assert grant.renewals >= 5
    assert grant.last_renewed is not None
    assert release_job_lock(lock) is True


def test_no_renewal_thread_outlives_its_lock(lock_name):
    # given
    lock = acquire_job_lock(lock_name, ttl=1)
    assert lock is not None
    assert len(renewal_threads(lock_name)) == 1
    # when
    release_job_lock(lock)
    # then
    assert renewal_threads(lock_name) == []
    assert not is_job_lock_held(lock_name)


def test_force_release_makes_the_holder_lose_the_lock_and_refuses_its_fenced_writes(lock_name):
    # given: a holder whose renewal would not notice for 10 s
    lost: list[object] = []
    lock = acquire_job_lock(lock_name, ttl=30, on_lost=lost.append)
    assert lock is not None
    # when
    assert force_release_job_lock(lock_name, by="operator-ann") is True
    # then: the fence refuses at once, before the holder noticed anything
    with pytest.raises(StaleLockError), lock.fenced():
        Group.objects.using(PRIMARY_DB_ALIAS).create(name=f"{lock_name}-stale")
    assert not Group.objects.using(PRIMARY_DB_ALIAS).filter(name=f"{lock_name}-stale").exists()
    grant = LockGrant.objects.using(PRIMARY_DB_ALIAS).get(owner=lock.owner)
    assert grant.outcome == LockGrant.Outcome.FORCE_RELEASED
    assert grant.force_released_by == "operator-ann"
    assert not is_job_lock_held(lock_name)
    release_job_lock(lock)
    assert renewal_threads(lock_name) == []


def test_renewal_notices_a_force_release_and_signals_the_loss(lock_name):
    # given
    lost: list[object] = []
    lock = acquire_job_lock(lock_name, ttl=0.6, on_lost=lost.append)
    assert lock is not None
    # when
    force_release_job_lock(lock_name, by="operator")
    wait_until(lambda: lost, timeout=3, interval=0.02, message="the renewal thread never signalled the loss")
    # then: the callback fired, the checkpoint raises, and the renewal thread ends with the lock
    assert lost == [lock]
    with pytest.raises(LockLost):
        lock.ensure_held()
    for thread in renewal_threads(lock_name):
        thread.join(timeout=2)
    assert renewal_threads(lock_name) == []
    assert release_job_lock(lock) is False


def test_fenced_block_commits_while_the_token_is_newest(lock_name):
    # given
    lock = acquire_job_lock(lock_name, ttl=5)
    assert lock is not None
    # when
    with lock.fenced():
        Group.objects.using(PRIMARY_DB_ALIAS).create(name=lock_name)
    release_job_lock(lock)
    # then
    assert Group.objects.using(PRIMARY_DB_ALIAS).filter(name=lock_name).exists()


def split_the_vote(lock_name: str, expires_ms: int) -> None:
    """Two other callers each hold one node (as after a three-way race): nobody has a majority."""
    quorum = get_quorum()
    first, second, _ = quorum.nodes
    first.client.set(quorum.key(lock_name), "racer-a", px=expires_ms)
    second.client.set(quorum.key(lock_name), "racer-b", px=expires_ms)


def test_a_split_vote_is_retried_until_a_majority_grants_it(lock_name, settings):
    # given: a vote split until the other racers' partial grants are given back (120 ms)
    settings.LOCK_SPLIT_VOTE_RETRIES = 3
    settings.LOCK_SPLIT_VOTE_DELAY = 0.1
    split_the_vote(lock_name, expires_ms=120)
    # when
    lock = acquire_job_lock(lock_name, ttl=5)
    # then: a retry won it, with its token and its audit row
    assert lock is not None and lock.token is not None
    assert LockGrant.objects.using(PRIMARY_DB_ALIAS).get(owner=lock.owner).outcome == LockGrant.Outcome.HELD
    release_job_lock(lock)


def test_a_vote_that_stays_split_gives_its_partial_grant_back(lock_name, settings):
    # given: no retries, and a vote split for longer than the attempt
    settings.LOCK_SPLIT_VOTE_RETRIES = 0
    split_the_vote(lock_name, expires_ms=5000)
    quorum = get_quorum()
    # when
    lock = acquire_job_lock(lock_name, ttl=5)
    # then: refused like a held lock, and the node it won no longer has its key
    assert lock is None
    assert quorum.nodes[2].client.get(quorum.key(lock_name)) is None


def test_a_lock_held_by_a_majority_is_not_retried(lock_name, settings):
    # given: another holder has the lock on every node; retries would only add waiting
    settings.LOCK_SPLIT_VOTE_DELAY = 1.0
    holder = acquire_job_lock(lock_name, ttl=5)
    assert holder is not None
    # when
    started = time.monotonic()
    lock = acquire_job_lock(lock_name, ttl=5)
    # then: refused at once
    assert lock is None
    assert time.monotonic() - started < 0.5
    release_job_lock(holder)


def test_a_repeated_token_does_not_let_the_older_holder_through(lock_name):
    # given: a holder of token N that stopped renewing (paused), whose keys then expired
    older = acquire_job_lock(lock_name, ttl=30)
    assert older is not None
    get_quorum().release(lock_name, older.owner)
    # and a failover that lost the primary's last increment: the fence is back at N - 1
    LockFence.objects.using(PRIMARY_DB_ALIAS).filter(name=lock_name).update(token=F("token") - 1)
    # when a new holder is granted, it gets token N again
    newer = acquire_job_lock(lock_name, ttl=30)
    assert newer is not None
    assert newer.token == older.token
    # then the older holder's fenced writes are refused, and the newer one's commit
    with pytest.raises(StaleLockError, match="issued again"), older.fenced():
        Group.objects.using(PRIMARY_DB_ALIAS).create(name=f"{lock_name}-older")
    with newer.fenced():
        Group.objects.using(PRIMARY_DB_ALIAS).create(name=f"{lock_name}-newer")
    names = set(
        Group.objects.using(PRIMARY_DB_ALIAS)
        .filter(name__startswith=lock_name)
        .values_list("name", flat=True)
    )
    assert names == {f"{lock_name}-newer"}
    release_job_lock(older)
    release_job_lock(newer)


def test_a_force_release_leaves_the_fence_naming_no_holder(lock_name):
    # given
    lock = acquire_job_lock(lock_name, ttl=30)
    assert lock is not None and lock.token is not None
    assert LockFence.objects.using(PRIMARY_DB_ALIAS).get(name=lock_name).owner == lock.owner
    # when
    force_release_job_lock(lock_name, by="operator")
    # then
    fence = LockFence.objects.using(PRIMARY_DB_ALIAS).get(name=lock_name)
    assert (fence.token, fence.owner) == (lock.token + 1, "")
    release_job_lock(lock)


def test_force_release_of_a_free_lock_reports_nothing_released(lock_name):
    assert force_release_job_lock(lock_name, by="operator") is False


def test_with_job_lock_runs_the_function_once_and_skips_when_held(lock_name):
    # given
    calls: list[object] = []

    def job(lock):
        calls.append(lock.token)
        return "done"

    # when
    result = with_job_lock(lock_name, job, ttl=5)
    with with_job_lock(lock_name, ttl=5) as outer:
        skipped = with_job_lock(lock_name, calls.append, ttl=5)
        inner_held = is_job_lock_held(lock_name)
    # then
    assert result == "done"
    assert len(calls) == 1
    assert outer is not None
    assert skipped is None
    assert inner_held is True
    assert not is_job_lock_held(lock_name)


def test_active_locks_list_owner_token_and_time_left(lock_name, settings):
    # given
    lock = acquire_job_lock(lock_name, ttl=10)
    assert lock is not None
    # when
    active = {entry.name: entry for entry in get_active_job_locks()}
    release_job_lock(lock)
    # then
    entry = active[lock_name]
    assert entry.owner == lock.owner
    assert entry.token == lock.token
    assert entry.server == settings.APP_SERVER_NAME
    assert 8 < entry.expires_in <= 10
    assert entry.renewals == 0
    assert lock_name not in {entry.name for entry in get_active_job_locks()}
