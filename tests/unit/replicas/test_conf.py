import pytest
from django.test import override_settings

from replicas.conf import debug_endpoints_enabled

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("debug", "setting", "enabled"),
    [(True, None, False), (False, None, False), (False, True, True), (True, False, False)],
)
def test_the_debug_endpoints_follow_their_own_setting_never_debug(debug, setting, enabled):
    with override_settings(DEBUG=debug, REPLICAS_DEBUG_ENDPOINTS=setting):
        assert debug_endpoints_enabled() is enabled
