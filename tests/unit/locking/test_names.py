"""Lock names are checked before any node or database is touched."""

import pytest

from locking.errors import InvalidLockName
from locking.names import parse_owner, validate_lock_name
from locking.services import acquire_job_lock

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "empty"),
        ("x" * 201, "201 characters long; the limit is 200"),
        ("nightly report", "characters outside"),
        ("jobs/nightly", r"\['/'\]"),
        ("lock:*", r"\['\*'\]"),
        ("caf\u00e9", "characters outside"),
    ],
)
def test_an_invalid_name_is_refused_saying_why(name, reason):
    with pytest.raises(ValueError, match=reason):
        acquire_job_lock(name, ttl=1)


def test_the_safe_set_passes():
    assert validate_lock_name("jobs:recurring-messages.v2_daily") == "jobs:recurring-messages.v2_daily"


def test_invalid_lock_name_is_a_value_error():
    assert issubclass(InvalidLockName, ValueError)


def test_a_ttl_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        acquire_job_lock("fine-name", ttl=0)


@pytest.mark.parametrize(
    ("owner", "expected"),
    [
        ("app1:4242:abcdef", ("app1", 4242)),
        ("host:with:colons:17:ff", ("host:with:colons", 17)),
        ("odd", ("odd", None)),
        ("app1:not-a-pid:ff", ("app1", None)),
        ("app1:\u0664\u0662:ff", ("app1", None)),  # Arabic-Indic digits are not a pid
    ],
)
def test_an_owner_id_names_its_server_and_pid(owner, expected):
    assert parse_owner(owner) == expected
