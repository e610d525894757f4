"""The live server's /metrics follows the app servers' rule (the same function): the metrics
token, or a client on the allowed networks; anyone else is not told it exists."""

import pytest
from django.test import override_settings

from config.clients import Caller
from config.observability import may_read_metrics

pytestmark = pytest.mark.unit

TOKEN = "m" * 40


def _scope(address: str, authorization: str | None = None, forwarded: str | None = None) -> dict:
    headers = [(b"authorization", authorization.encode())] if authorization else []
    if forwarded:
        headers.append((b"x-forwarded-for", forwarded.encode()))
    return {"type": "http", "client": (address, 50000), "headers": headers}


def _may_read(scope: dict) -> bool:
    return may_read_metrics(Caller.from_scope(scope))


@override_settings(METRICS_ALLOWED_NETWORKS=["10.0.0.0/8"], METRICS_TOKEN=TOKEN)
def test_an_allowed_network_or_the_token_may_read_metrics():
    assert _may_read(_scope("10.1.2.3"))
    assert _may_read(_scope("::ffff:10.1.2.3"))
    assert _may_read(_scope("192.0.2.7", f"Bearer {TOKEN}"))


@override_settings(METRICS_ALLOWED_NETWORKS=["10.0.0.0/8"], METRICS_TOKEN=TOKEN)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong", f"Basic {TOKEN}", "Bearer"])
def test_anyone_else_may_not(authorization):
    assert not _may_read(_scope("192.0.2.7", authorization))


@override_settings(
    METRICS_ALLOWED_NETWORKS=["10.0.0.0/8"], METRICS_TOKEN=TOKEN, HEALTH_TRUSTED_PROXIES=["127.0.0.1/32"]
)
def test_a_forwarded_address_counts_only_from_a_trusted_proxy():
    # through a trusted proxy: the address it appended is the client's
    assert not _may_read(_scope("127.0.0.1", forwarded="192.0.2.7"))
    assert _may_read(_scope("127.0.0.1", forwarded="10.1.2.3"))
    # straight from outside: a forged header changes nothing
    assert not _may_read(_scope("192.0.2.7", forwarded="10.1.2.3"))


@override_settings(METRICS_ALLOWED_NETWORKS=["10.0.0.0/8"], METRICS_TOKEN="")
def test_an_empty_token_opens_nothing():
    assert not _may_read(_scope("192.0.2.7", "Bearer "))
