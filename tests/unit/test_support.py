"""The test harness's own rules: a wait returns what it waited for, or fails saying what it saw."""

import signal
import subprocess
import sys
import time

import pytest

from tests.support import WaitTimeout, paused, stop_process, wait_until

pytestmark = pytest.mark.unit


def test_wait_until_returns_the_first_true_value():
    # given a condition that holds on its third call
    calls: list[int] = []

    def third() -> list[int] | None:
        calls.append(len(calls))
        return calls if len(calls) == 3 else None

    # when / then
    assert wait_until(third, timeout=5, interval=0, message="never") == [0, 1, 2]


def test_wait_until_fails_with_the_message_and_the_last_value_seen():
    # when a condition never holds
    with pytest.raises(WaitTimeout) as failed:
        wait_until(lambda: 0, timeout=0.1, interval=0.02, message=lambda: "the counter stayed at zero")
    # then the failure says what was waited for and what was last seen
    assert "the counter stayed at zero" in str(failed.value)
    assert "last: 0" in str(failed.value)
    assert isinstance(failed.value, AssertionError)


def test_wait_until_checks_once_more_at_the_deadline_however_slow_the_condition():
    # given a condition slower than the whole timeout, true from its second call
    calls: list[float] = []

    def slow() -> bool:
        calls.append(time.monotonic())
        time.sleep(0.2)
        return len(calls) > 1

    # when / then: the second call, made after the deadline, still counts
    assert wait_until(slow, timeout=0.1, interval=0, message="never") is True


def test_wait_until_treats_only_the_ignored_exceptions_as_not_yet():
    # given a condition that fails twice with an expected error
    errors = [ConnectionError("restarting"), ConnectionError("restarting")]

    def flaky() -> str:
        if errors:
            raise errors.pop()
        return "up"

    # when / then
    assert wait_until(flaky, timeout=5, interval=0, ignoring=(ConnectionError,), message="down") == "up"
    with pytest.raises(ValueError):
        wait_until(lambda: int("x"), timeout=5, interval=0, ignoring=(ConnectionError,), message="never")


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]


def test_paused_stops_a_process_for_the_block_only_and_stop_process_ends_it():
    # given a child process of this test that ignores SIGTERM
    script = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(); time.sleep(60)"
    child = subprocess.Popen([sys.executable, "-u", "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "\n"  # its handler is set
        # when it is paused, then resumed after a failing block
        with pytest.raises(RuntimeError), paused(child.pid):
            wait_until(lambda: _state(child.pid) == "T", timeout=5, message="the child never stopped")
            raise RuntimeError("the block failed")
        # then it runs again
        wait_until(lambda: _state(child.pid) != "T", timeout=5, message="the child was left stopped")
    finally:
        # and stop_process ends it all the same: SIGKILL once SIGTERM had its time
        stop_process(child, timeout=0.5)
    assert child.returncode == -signal.SIGKILL
