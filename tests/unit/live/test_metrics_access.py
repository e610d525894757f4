"""The live server's /metrics follows the app servers' rule: the metrics token, or a client on
the allowed networks; anyone else is not told it exists."""

import pytest
from django.test import override_settings

from live.server import _internal

pytestmark = pytest.mark.unit

TOKEN = "m" * 40


def _scope(address: str, authorization: str | None = None) -> dict:
    headers = [(b"authorization", authorization.encode())] if authorization else []
    return {"type": "http", "client": (address, 50000), "headers": headers}


@override_settings(METRICS_ALLOWED_NETWORKS=["10.0.0.0/8"], METRICS_TOKEN=TOKEN)
def test_an_allowed_network_or_the_token_may_read_metrics():
    assert _internal(_scope("10.1.2.3"))
    assert _internal(_scope("192.0.2.7", f"Bearer {TOKEN}"))


@override_settings(METRICS_ALLOWED_NETWORKS=["10.0.0.0/8"], METRICS_TOKEN=TOKEN)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong", f"Basic {TOKEN}", "Bearer"])
def test_anyone_else_may_not(authorization):
    assert not _internal(_scope("192.0.2.7", authorization))


@override_settings(METRICS_ALLOWED_NETWORKS=["10.0.0.0/8"], METRICS_TOKEN="")
def test_an_empty_token_opens_nothing():
    assert not _internal(_scope("192.0.2.7", "Bearer "))
