"""Read-your-writes for clients that keep no cookies: the write position per principal in Redis,
and the ``X-Replica-Min-LSN`` hint header (only a value a server issued, within its window)."""

import time

import pytest
from django.core import signing
from django.test import Client, RequestFactory, override_settings
from prometheus_client import REGISTRY

from replicas.lsn import format_lsn
from replicas.middleware import HEADER_SALT, position_from_header, position_token
from replicas.positions import position_for, position_remember, principal_key
from tests.integration.replicas.conftest import REPLICA_DB, primary_lsn

pytestmark = [pytest.mark.integration, REPLICA_DB]

# Far ahead of anything the replica has: reads that must see it can only go to the primary.
AHEAD = 1 << 40


def _principal(authorization: str) -> str:
    key = principal_key(RequestFactory().get("/", HTTP_AUTHORIZATION=authorization))
    assert key is not None
    return key


def _echoed(value: str) -> int | None:
    """What the server makes of ``value`` sent back as ``X-Replica-Min-LSN``."""
    return position_from_header(RequestFactory().get("/", headers={"X-Replica-Min-LSN": value}))


def _ignored(reason: str) -> float:
    return REGISTRY.get_sample_value("app_replica_position_hints_ignored_total", {"reason": reason}) or 0.0


def _server(client: Client, probe_id: int, **headers: str) -> str:
    response = client.get(f"/replicas/debug/probes/{probe_id}", headers=headers)
    assert response.status_code == 200, response.content
    return response.json()["server"]


def test_a_write_keeps_the_position_under_the_token_and_says_it_in_a_header(measured):
    # given a client that sends a bearer token and keeps no cookies
    authorization = "Bearer read-your-writes-token-1"
    # when it writes
    response = Client().post("/replicas/debug/probes", headers={"authorization": authorization})
    # then the position after the write is kept under the token's hash and sent back
    assert response.status_code == 201
    said = _echoed(response["X-Replica-LSN"])
    assert said is not None
    assert said <= primary_lsn()
    assert position_for(key=_principal(authorization)) == said


def test_a_later_request_with_the_same_token_waits_for_its_position_on_any_server(measured, replayed_probe):
    # given a token whose last write the replica has not replayed (a position far ahead), and
    # a row every replica has
    probe = replayed_probe()
    mine, someone_else = "Bearer read-your-writes-token-2", "Bearer read-your-writes-token-3"
    position_remember(key=_principal(mine), lsn=primary_lsn() + AHEAD)
    # when each reads without cookies
    my_server = _server(Client(), probe.pk, authorization=mine)
    their_server = _server(Client(), probe.pk, authorization=someone_else)
    # then mine go to the primary, theirs to the replica
    assert (my_server, their_server) == ("primary", "replica")


def test_a_smaller_position_never_replaces_a_larger_one(measured):
    key = _principal("Bearer read-your-writes-token-4")
    position_remember(key=key, lsn=2000)
    position_remember(key=key, lsn=1000)  # a slower request of the same client finishing later
    assert position_for(key=key) == 2000


def test_the_hint_header_sends_reads_to_a_replica_that_has_the_position(measured, replayed_probe):
    probe = replayed_probe()
    now = primary_lsn()
    assert _server(Client(), probe.pk, **{"X-Replica-Min-LSN": position_token(now + AHEAD)}) == "primary"
    assert _server(Client(), probe.pk, **{"X-Replica-Min-LSN": position_token(now - 1)}) == "replica"
    assert _server(Client(), probe.pk, **{"X-Replica-Min-LSN": "not-a-position"}) == "replica"


def test_a_position_no_server_issued_is_ignored_and_counted(measured, replayed_probe):
    # given a row the replica has, and a client that makes up the largest position there is
    probe = replayed_probe()
    before = _ignored("unsigned")
    forged = {"X-Replica-Min-LSN": "FFFFFFFF/FFFFFFFF"}
    # when it reads with it, as it stands and with a signature of its own
    bare = _server(Client(), probe.pk, **forged)
    resigned = signing.TimestampSigner(key="not-the-secret-key", salt=HEADER_SALT).sign("FFFFFFFF/FFFFFFFF")
    signed_elsewhere = _server(Client(), probe.pk, **{"X-Replica-Min-LSN": resigned})
    # then both reads go to the replica, and both values are counted as ignored
    assert (bare, signed_elsewhere) == ("replica", "replica")
    assert _ignored("unsigned") == before + 2


class _SignedAMinuteAgo(signing.TimestampSigner):
    def timestamp(self) -> str:
        return signing.b62_encode(int(time.time()) - 60)


def test_a_position_older_than_the_window_is_ignored_and_counted(measured, replayed_probe):
    # given a position the server issued a minute ago, far ahead of the replica
    probe = replayed_probe()
    old = _SignedAMinuteAgo(salt=HEADER_SALT).sign(format_lsn(primary_lsn() + AHEAD))
    before = _ignored("expired")
    # when a client sends it back after the read-your-writes window (5 s) has passed
    server = _server(Client(), probe.pk, **{"X-Replica-Min-LSN": old})
    # then it no longer holds the reads on the primary
    assert server == "replica"
    assert _ignored("expired") == before + 1


def test_when_redis_cannot_say_a_principals_reads_go_to_the_primary(measured, replayed_probe):
    # given a row the replica has, and the cache's Redis unreachable (nothing listens on port 9)
    probe = replayed_probe()
    unreachable = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/1",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
        }
    }
    with override_settings(CACHES=unreachable):
        # when a client with a token reads, and one without any credentials reads
        with_token = _server(Client(), probe.pk, authorization="Bearer read-your-writes-token-5")
        anonymous = _server(Client(), probe.pk)
    # then the token's reads are kept safe on the primary; the anonymous ones need no position
    assert (with_token, anonymous) == ("primary", "replica")
