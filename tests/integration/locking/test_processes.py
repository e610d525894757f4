"""The lock between real processes: exclusion, a killed holder, a paused holder and its fence."""

import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from django.contrib.auth.models import Group

from config.databases import PRIMARY_DB_ALIAS
from locking.models import LockGrant
from locking.services import JobLock, acquire_job_lock, release_job_lock
from tests.support import REPO, paused, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def acquire_eventually(name: str, ttl: float, timeout: float) -> JobLock:
    return wait_until(
        lambda: acquire_job_lock(name, ttl),
        timeout=timeout,
        interval=0.02,
        message=f"the lock {name} was not granted to this process",
    )


def test_processes_contending_for_a_lock_never_overlap(lock_name, child_env, tmp_path):
    # given: three processes, each doing five read-sleep-write increments under the lock
    log = tmp_path / "holders.log"
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                str(REPO / "tests/integration/locking/lockproc.py"),
                "contend",
                lock_name,
                "5",
                str(log),
            ],
            env=child_env,
            cwd=REPO,
        )
        for _ in range(3)
    ]
    # when
    codes = [process.wait(timeout=60) for process in processes]
    # then: no lost update, and every holding interval ends before the next one starts
    assert codes == [0, 0, 0]
    assert log.with_suffix(".counter").read_text() == "15"
    events = [line.split() for line in log.read_text().splitlines()]
    assert len(events) == 30
    assert [kind for kind, _ in events] == ["enter", "leave"] * 15
    times = [float(at) for _, at in events]
    assert times == sorted(times)


def test_a_killed_holder_frees_the_lock_within_ttl_plus_one_second(lock_name, spawn_holder):
    # given
    holder = spawn_holder(lock_name, 1.0)
    assert holder.read().startswith("acquired")
    assert acquire_job_lock(lock_name, 1.0) is None
    # when
    holder.process.send_signal(signal.SIGKILL)  # a crash: no release, no cleanup
    killed_at = time.monotonic()
    lock = acquire_eventually(lock_name, 1.0, timeout=5)
    waited = time.monotonic() - killed_at
    # then: the dead holder's row is closed as expired by the next grant
    assert lock is not None
    assert waited <= 2.0
    outcomes = dict(
        LockGrant.objects.using(PRIMARY_DB_ALIAS).filter(name=lock_name).values_list("pid", "outcome")
    )
    assert outcomes[holder.pid] == LockGrant.Outcome.EXPIRED
    release_job_lock(lock)


def test_a_paused_holder_cannot_commit_after_a_newer_holder_started(lock_name, spawn_holder):
    # given: a holder that is paused past its TTL
    holder = spawn_holder(lock_name, 1.0)
    old_token = int(holder.read().split()[1])
    with paused(holder.pid):
        # when: another process takes the lock and writes under its fence
        lock = acquire_eventually(lock_name, 1.0, timeout=5)
        assert lock.token is not None
        assert lock.token > old_token
        with lock.fenced():
            Group.objects.using(PRIMARY_DB_ALIAS).create(name=f"{lock_name}-new")
    # then: the old holder wakes up, its fenced writes are refused and nothing of it is committed
    answer = holder.ask(f"write {lock_name}-old")
    assert answer in {"StaleLockError", "LockLost"}
    assert holder.ask("ensure") == "lost"
    assert Group.objects.using(PRIMARY_DB_ALIAS).filter(name__startswith=f"{lock_name}-old").count() == 0
    assert Group.objects.using(PRIMARY_DB_ALIAS).filter(name=f"{lock_name}-new").exists()
    assert lock.held
    release_job_lock(lock)


def test_a_holder_paused_inside_its_fenced_block_is_cut_off_and_the_next_holder_proceeds(
    lock_name, spawn_holder
):
    # given: a holder paused in the middle of its fenced transaction (the fence row locked)
    holder = spawn_holder(lock_name, 1.0)
    assert holder.read().startswith("acquired")
    assert holder.ask(f"write-paused {lock_name}-old") == "inside"
    with paused(holder.pid):
        # when: the lock expires and another process takes it (its token waits for the row)
        lock = acquire_eventually(lock_name, 5.0, timeout=10)
        with lock.fenced():
            Group.objects.using(PRIMARY_DB_ALIAS).create(name=f"{lock_name}-new")
    # then: PostgreSQL ended the paused transaction; none of the old holder's writes committed
    assert holder.ask("continue") != "wrote"
    assert Group.objects.using(PRIMARY_DB_ALIAS).filter(name__startswith=f"{lock_name}-old").count() == 0
    assert Group.objects.using(PRIMARY_DB_ALIAS).filter(name=f"{lock_name}-new").exists()
    release_job_lock(lock)


def test_three_callers_racing_at_the_same_instant_always_leave_one_winner(lock_name, child_env):
    # given: three processes that, round after round, ask for a fresh lock at the same instant
    # (as the three beats' deliveries of one tick do), each reaching another node first (as
    # servers in different places would), so the nodes' votes split
    rounds, spacing = 40, 0.2
    script = str(REPO / "tests/integration/locking/lockproc.py")
    racers = [
        subprocess.Popen(
            [sys.executable, script, "race", lock_name, str(rounds), str(spacing), str(nearest_node)],
            env=child_env,
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for nearest_node in range(3)
    ]
    for racer in racers:
        assert racer.stdout is not None and racer.stdout.readline().strip() == "ready"
    start_at = time.time() + 0.5
    for racer in racers:
        assert racer.stdin is not None
        racer.stdin.write(f"{start_at}\n")
        racer.stdin.flush()
    # when
    lines = [[racer.stdout.readline().split() for _ in range(rounds)] for racer in racers if racer.stdout]
    outputs = [racer.communicate(input="done\n", timeout=60)[0] for racer in racers]
    # then: every round ("tick") has exactly one winner: none lost to a split vote, none doubled
    assert [racer.returncode for racer in racers] == [0, 0, 0]
    assert outputs == ["", "", ""]
    winners = Counter(
        int(index) for racer_lines in lines for index, outcome in racer_lines if outcome == "won"
    )
    assert winners == Counter(range(rounds))
