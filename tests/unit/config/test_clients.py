"""The operator paths' rule, from a caller built out of either server's request."""

import pytest
from django.test import override_settings

from config.clients import Caller, client_address, may_read_operator_path

pytestmark = pytest.mark.unit

TOKEN = "operator-token-for-tests"
INTERNAL = ["10.0.0.0/8"]


@override_settings(HEALTH_TRUSTED_PROXIES=["127.0.0.1/32"])
@pytest.mark.parametrize(
    ("peer", "client"),
    [
        # what a dual-stack socket reports for an IPv4 peer is that IPv4 address
        ("::ffff:10.1.2.3", "10.1.2.3"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("2001:db8::1", "2001:db8::1"),
        ("not-an-address", None),
    ],
)
def test_an_ipv4_mapped_peer_is_its_ipv4_address(peer, client):
    found = client_address(Caller(peer=peer))
    assert (str(found) if found else None) == client


@override_settings(HEALTH_TRUSTED_PROXIES=["127.0.0.1/32"])
def test_an_ipv4_mapped_trusted_proxy_is_trusted_and_a_mapped_hop_unwrapped():
    caller = Caller(peer="::ffff:127.0.0.1", forwarded_for="::ffff:10.9.8.7")
    assert str(client_address(caller)) == "10.9.8.7"
    assert may_read_operator_path(caller, token="", networks=INTERNAL)


@pytest.mark.parametrize(
    ("caller", "allowed"),
    [
        (Caller(peer="10.1.2.3"), True),
        (Caller(peer="::ffff:10.1.2.3"), True),
        (Caller(peer="203.0.113.9"), False),
        (Caller(peer="203.0.113.9", authorization=f"Bearer {TOKEN}"), True),
        (Caller(peer="203.0.113.9", authorization=f"bearer {TOKEN}"), True),
        (Caller(peer="203.0.113.9", authorization=f"Bearer {TOKEN}x"), False),
        (Caller(peer="203.0.113.9", authorization=f"Basic {TOKEN}"), False),
        (Caller(peer=""), False),
    ],
)
def test_the_token_or_an_internal_network(caller, allowed):
    assert may_read_operator_path(caller, token=TOKEN, networks=INTERNAL) is allowed


def test_an_empty_token_lets_nobody_in_by_token():
    caller = Caller(peer="203.0.113.9", authorization="Bearer ")
    assert not may_read_operator_path(caller, token="", networks=INTERNAL)


def test_a_wsgi_environ_and_an_asgi_scope_give_the_same_caller():
    # given the same request as the app server's WSGI and the live server's ASGI see it
    environ = {
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_X_FORWARDED_FOR": "198.51.100.4,10.0.0.1",
        "HTTP_AUTHORIZATION": "Bearer abc",
    }
    scope = {
        "type": "http",
        "client": ("127.0.0.1", 51000),
        "headers": [
            (b"x-forwarded-for", b"198.51.100.4"),
            (b"Authorization", b"Bearer abc"),
            (b"x-forwarded-for", b"10.0.0.1"),
        ],
    }
    # then both make one caller (repeated headers joined, as WSGI joins them)
    assert Caller.from_environ(environ) == Caller.from_scope(scope)
