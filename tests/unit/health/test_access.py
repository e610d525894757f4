"""Which address counts as the client's, and who may read /health/detailed."""

import pytest
from django.test import RequestFactory, override_settings

from config.clients import Caller, client_address
from health import access

pytestmark = pytest.mark.unit

TOKEN = "detailed-probe-token-for-tests"


def _request(remote: str, forwarded: str = "", authorization: str = "") -> Caller:
    """The caller as the Django view sees it, from a request's META."""
    request = RequestFactory().get("/health/detailed", REMOTE_ADDR=remote)
    if forwarded:
        request.META["HTTP_X_FORWARDED_FOR"] = forwarded
    if authorization:
        request.META["HTTP_AUTHORIZATION"] = authorization
    return Caller.from_environ(request.META)


@pytest.mark.parametrize(
    ("remote", "forwarded", "client"),
    [
        # a direct client: the TCP peer, whatever it claims
        ("203.0.113.7", "10.0.0.1", "203.0.113.7"),
        # through NGINX on loopback: the address NGINX appended
        ("127.0.0.1", "198.51.100.4", "198.51.100.4"),
        # a client forging a private address to the left of what NGINX appended
        ("127.0.0.1", "10.0.0.1, 198.51.100.4", "198.51.100.4"),
        # two trusted hops (NGINX behind a local proxy) are skipped
        ("127.0.0.1", "198.51.100.4, 127.0.0.1", "198.51.100.4"),
        # only trusted hops: the request really came from this host
        ("127.0.0.1", "", "127.0.0.1"),
        ("::ffff:127.0.0.1", "192.168.1.9", "192.168.1.9"),
        # garbage where NGINX would have written an address: unknown
        ("127.0.0.1", "not-an-address", None),
        ("", "", None),
    ],
)
def test_the_client_address(remote, forwarded, client):
    # when
    found = client_address(_request(remote, forwarded))

    # then
    assert (str(found) if found else None) == client


@override_settings(HEALTH_DETAILED_TOKEN=TOKEN)
@pytest.mark.parametrize(
    ("remote", "forwarded", "authorization", "allowed"),
    [
        ("127.0.0.1", "", "", True),
        ("10.2.3.4", "", "", True),
        ("127.0.0.1", "203.0.113.9", "", False),
        ("203.0.113.9", "", "", False),
        ("203.0.113.9", "", f"Bearer {TOKEN}", True),
        ("203.0.113.9", "", "Bearer wrong-token", False),
        ("203.0.113.9", "", f"Basic {TOKEN}", False),
        # an IPv4 peer on a dual-stack socket: the IPv4 address it carries is on the network
        ("::ffff:10.2.3.4", "", "", True),
        ("::ffff:203.0.113.9", "", "", False),
    ],
)
def test_who_may_read_the_detailed_probe(remote, forwarded, authorization, allowed):
    assert access.may_read_detailed(_request(remote, forwarded, authorization)) is allowed


@override_settings(HEALTH_DETAILED_TOKEN="")
def test_an_empty_token_setting_lets_nobody_in_by_token():
    assert not access.may_read_detailed(_request("203.0.113.9", authorization="Bearer "))
