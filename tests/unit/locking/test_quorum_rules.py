"""The quorum's arithmetic, on replies built by hand (no node is contacted)."""

import pytest

from locking.nodes import NodeReply, NodeTimedOut
from locking.quorum import LockQuorum

pytestmark = pytest.mark.unit


def make_quorum(nodes: int) -> LockQuorum:
    # Nothing connects until a command is sent, so these ports never need to exist.
    urls = [f"redis://127.0.0.1:{1 + index}/0" for index in range(nodes)]
    return LockQuorum(
        urls, key_prefix="t:", connect_timeout=0.1, socket_timeout=0.1, retry_interval=1.0, drift_factor=0.01
    )


def test_majority_of_three_is_two_and_of_one_is_one():
    assert make_quorum(3).majority == 2
    assert make_quorum(1).majority == 1
    assert make_quorum(5).majority == 3


def test_the_holder_is_the_owner_a_majority_agrees_on_with_the_majoritys_shortest_ttl():
    # given
    quorum = make_quorum(3)
    a, b, c = quorum.nodes
    replies = [
        NodeReply(a, value=("me", 900)),
        NodeReply(b, value=("me", 700)),
        NodeReply(c, value=("you", 950)),
    ]
    # when / then: with two nodes the lock lives as long as the second-longest of them
    assert quorum.holder(replies) == ("me", 700)


def test_no_holder_when_the_nodes_disagree_or_do_not_answer():
    quorum = make_quorum(3)
    a, b, c = quorum.nodes
    split = [
        NodeReply(a, value=("me", 900)),
        NodeReply(b, value=(None, -2)),
        NodeReply(c, value=("you", 950)),
    ]
    silent = [
        NodeReply(a, value=("me", 900)),
        NodeReply(b, error=NodeTimedOut("b")),
        NodeReply(c, error=OSError()),
    ]
    assert quorum.holder(split) is None
    assert quorum.holder(silent) is None
    assert not quorum.answered_enough(silent)


def test_validity_takes_off_the_elapsed_time_and_the_drift_allowance():
    quorum = make_quorum(3)
    # a 1,000 ms TTL keeps 1000 - (10 + 2) ms of validity from the moment the request started
    assert quorum._validity(100.0, 1000) == pytest.approx(100.988)
