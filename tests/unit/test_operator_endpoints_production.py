"""Under the production settings, /metrics and /health/detailed believe X-Forwarded-For only from
the configured proxies and open to loopback or the token: a forged header gets a 404."""

import json

import pytest

from tests.unit.production_env import run_under_production

pytestmark = pytest.mark.unit

TOKEN = "monitoring-token-for-the-production-settings-test"
INGRESS = "10.2.0.7"  # the ingress controller's pod: the one trusted proxy
PRODUCTION = {"HEALTH_DETAILED_TOKEN": TOKEN, "HEALTH_TRUSTED_PROXIES": f"{INGRESS}/32"}
# Each case: (path, REMOTE_ADDR, X-Forwarded-For, Authorization) -> the status in production.
# Only the refusals are asked of /health/detailed: an allowed request would run its checks.
SCRIPT = """
import json, sys
import django
django.setup()
from django.test import Client
out = []
for path, remote, forwarded, authorization in json.loads(sys.argv[1]):
    headers = {}
    if forwarded:
        headers["X-Forwarded-For"] = forwarded
    if authorization:
        headers["Authorization"] = authorization
    out.append(Client(REMOTE_ADDR=remote).get(path, secure=True, headers=headers).status_code)
print(json.dumps(out))
"""


def _statuses(cases: list[tuple[str, str, str, str]]) -> list[int]:
    drop = ("DJANGO_", "MESSAGING_", "HEALTH_", "METRICS_")
    return json.loads(run_under_production(SCRIPT, json.dumps(cases), drop=drop, **PRODUCTION))


@pytest.mark.parametrize("path", ["/metrics", "/health/detailed"])
def test_a_forged_forwarded_for_is_refused(path):
    cases = [
        # straight to the pod from a private address that is not the proxy, claiming loopback
        (path, "10.3.4.5", "127.0.0.1", ""),
        # through the ingress: the client put loopback to the left of its real address
        (path, INGRESS, "127.0.0.1, 8.8.8.8", ""),
        # through the ingress from the internet
        (path, INGRESS, "8.8.8.8", ""),
        # a private pod address is no longer "internal" by itself in production
        (path, "10.3.4.5", "", ""),
        # a wrong token
        (path, "10.3.4.5", "", "Bearer not-the-token"),
    ]
    assert _statuses(cases) == [404] * len(cases)


def test_metrics_answer_loopback_and_the_token():
    cases = [
        ("/metrics", "127.0.0.1", "", ""),
        ("/metrics", "10.3.4.5", "8.8.8.8", f"Bearer {TOKEN}"),
    ]
    assert _statuses(cases) == [200, 200]
