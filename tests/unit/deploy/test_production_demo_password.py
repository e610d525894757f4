"""Under the production settings the demo user's password has no default (issue 22, item 10):
the development one is printed in the README."""

import pytest

from tests.unit.production_env import run_under_production

pytestmark = pytest.mark.unit

SCRIPT = (
    "import django; django.setup(); from django.conf import settings; "
    "print(repr(settings.MESSAGING_DEMO_PASSWORD))"
)


def _demo_password(**environ: str) -> str:
    return run_under_production(SCRIPT, drop=("DJANGO_", "MESSAGING_"), **environ)


def test_production_has_no_demo_password_unless_given():
    assert _demo_password() == "None"
    assert _demo_password(MESSAGING_DEMO_PASSWORD="chosen-by-the-operator") == "'chosen-by-the-operator'"
