"""Per-client rate limits at NGINX: auth and the admin's login form 10 r/s (burst 20), webhooks
50 r/s (burst 100), API 100 r/s (burst 200); 429 beyond.

With ``burst=B nodelay`` and rate R, a client that starts with an empty bucket gets its first
B + 1 requests through and at most R more per second after that; the rest are refused with 429
by NGINX itself (no app server answers them, so they carry no X-Served-By). The paths are real
endpoints that answer fast without credentials (GET on a POST-only endpoint: 405, GET
/api/contacts without a token: 401), so a busy machine still sends faster than the zone's rate.
"""

import json

import pytest

from deploy.nginx.render import RATELIMIT_BYPASS_HEADER
from tests.cluster.edge.conftest import outside_address

pytestmark = pytest.mark.cluster


def most_allowed(*, rate: int, burst: int, seconds: float) -> int:
    return burst + 1 + int(rate * seconds) + 1  # +1: NGINX counts in milliseconds


@pytest.mark.parametrize(
    ("path", "rate", "burst_size", "count"),
    [
        ("/auth/login", 10, 20, 60),
        ("/admin/login/", 10, 20, 60),
        ("/webhooks/sms/status", 50, 100, 300),
        ("/api/contacts", 100, 200, 600),
    ],
    ids=["auth", "admin-login", "webhooks", "api"],
)
def test_one_client_over_the_zone_rate_gets_429s(burst, path, rate, burst_size, count):
    # when: one client sends far more than the zone's rate, as fast as it can
    got = burst(path, count, source=outside_address())
    # then
    allowed = [reply for reply in got.replies if reply.status != 429]
    assert burst_size + 1 <= len(allowed) <= most_allowed(rate=rate, burst=burst_size, seconds=got.seconds)
    assert got.count(429) >= count - most_allowed(rate=rate, burst=burst_size, seconds=got.seconds)
    assert got.count(429) > 0
    assert not any(reply.served_by for reply in got.replies if reply.status == 429)
    if path.startswith("/admin/"):
        # the admin is internal-only: an outside client's allowed tries are NGINX's 403s
        assert all(reply.status == 403 and not reply.served_by for reply in allowed)
        return
    # the allowed ones were answered by an app server (or, when more arrived at once than the
    # servers admit, shed by the edge's overload guard: a 503, ADR 0014), the refused ones by NGINX
    assert all(reply.served_by or reply.status == 503 for reply in allowed)


def test_the_limit_is_per_client(burst):
    # given: one client has used up its auth bucket
    first = burst("/auth/login", 40, source=outside_address())
    assert first.count(429) > 0
    # when: another client calls right away
    second = burst("/auth/login", 10, source=outside_address())
    # then
    assert second.count(429) == 0


def test_the_bypass_token_exempts_a_load_generator(burst, cluster_settings):
    # when: the same flood, with the cluster's token
    token = cluster_settings.ratelimit_bypass_token()
    got = burst("/auth/login", 60, source=outside_address(), headers={RATELIMIT_BYPASS_HEADER: token})
    # then
    assert got.count(429) == 0


def test_a_wrong_bypass_token_is_limited_like_no_token(burst, cluster_settings):
    wrong = cluster_settings.ratelimit_bypass_token()[::-1] + "x"
    got = burst("/auth/login", 60, source=outside_address(), headers={RATELIMIT_BYPASS_HEADER: wrong})
    assert got.count(429) > 0


def test_a_429_is_json_with_retry_after(burst):
    # when
    got = burst("/auth/login", 60, source=outside_address())
    # then
    refused = next(reply for reply in got.replies if reply.status == 429)
    assert refused.headers["content-type"] == "application/json"
    assert refused.headers["retry-after"] == "1"
    assert json.loads(refused.body_file.read_text()) == {
        "error": "too_many_requests",
        "detail": "slow down and retry later",
    }


def test_socketio_handshakes_are_rate_limited_per_client(burst):
    # when: one client opens far more than 10 a second (plain GETs: the live servers answer 400)
    got = burst("/socket.io/", 60, source=outside_address())
    # then: the burst passes, less at most one: the 21st can meet the limit of 20 open connections
    # per client while the first 20 are still being answered
    allowed = [reply for reply in got.replies if reply.status != 429]
    assert 20 <= len(allowed) <= most_allowed(rate=10, burst=20, seconds=got.seconds)
    assert got.count(429) > 0
