"""The drain flag is shared with processes forked after it was created, as gunicorn's workers are."""

import os

import pytest

from health import drain

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _serving():
    drain.stop_draining()
    yield
    drain.stop_draining()


def test_a_flag_set_in_the_parent_after_the_fork_is_seen_by_the_child():
    # given: a "worker" forked before the drain begins, waiting for the parent's go
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # the worker
        os.close(write_end)
        os.read(read_end, 1)
        os._exit(0 if drain.is_draining() else 1)
    os.close(read_end)

    # when: the "master" starts draining
    drain.start_draining()
    os.write(write_end, b"x")

    # then
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert drain.is_draining()
    assert drain.draining_since() is not None


def test_serving_until_a_drain_starts():
    assert not drain.is_draining()
    assert drain.draining_since() is None
