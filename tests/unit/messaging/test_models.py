"""Validators of the model fields."""

import pytest

from messaging.models import validate_cron

pytestmark = pytest.mark.unit


def test_a_cron_expression_is_validated():
    validate_cron("0 9 * * 0")
    with pytest.raises(Exception, match="not a valid cron"):
        validate_cron("every sunday")
