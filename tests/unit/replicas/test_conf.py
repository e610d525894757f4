import pytest
from django.test import override_settings

from replicas.conf import debug_endpoints_enabled

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("debug", "setting", "enabled"),
    [(True, None, True), (False, None, False), (False, True, True), (True, False, False)],
)
def test_the_debug_endpoints_follow_debug_unless_set(debug, setting, enabled):
    with override_settings(DEBUG=debug, REPLICAS_DEBUG_ENDPOINTS=setting):
        assert debug_endpoints_enabled() is enabled
