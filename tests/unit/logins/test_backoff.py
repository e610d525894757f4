"""How long an account stays locked after its n-th failure in a row."""

import pytest

from logins.services import lockout_seconds

pytestmark = pytest.mark.unit


def test_the_lock_starts_at_the_threshold_doubles_and_stops_at_the_maximum(settings):
    settings.LOGIN_LOCKOUT_FAILURES = 5
    settings.LOGIN_LOCKOUT_BASE_SECONDS = 60
    settings.LOGIN_LOCKOUT_MAX_SECONDS = 3600
    assert [lockout_seconds(n) for n in range(1, 13)] == [
        0,
        0,
        0,
        0,
        60,
        120,
        240,
        480,
        960,
        1920,
        3600,
        3600,
    ]
    assert lockout_seconds(10_000) == 3600
