"""Graceful overload: a burst above what the app servers can hold gets only 2xx and quick 503s.

Each request of the burst holds an app-server slot for a second (``/health/debug/slow``, on in
the local cluster), so the burst is well above the edge's admission (``max_conns`` per server,
32 by default) whatever the machine's speed. Bounded: one burst of a few hundred requests.
"""

import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from deploy.nginx.render import nginx_settings

pytestmark = pytest.mark.cluster

HOLD_SECONDS = 1.0


def test_a_burst_above_capacity_gets_only_2xx_and_quick_json_503s(cluster_settings, http, nginx_url):
    servers = len(cluster_settings.app_ports)
    admitted = servers * nginx_settings({}).upstream_max_conns
    burst = admitted + 150
    url = f"{nginx_url}/health/debug/slow?seconds={HOLD_SECONDS}"
    start = threading.Barrier(burst + 1)

    def one(_index: int) -> tuple[object, float, dict[str, str], str]:
        session = requests.Session()
        session.trust_env = False
        session.verify = http.verify
        session.headers.update(http.headers)
        session.get(f"{nginx_url}/health/live", timeout=10)  # TLS handshake before the burst
        start.wait(timeout=60)
        started = time.monotonic()
        try:
            response = session.get(url, timeout=30)
        except requests.RequestException as error:
            return type(error).__name__, time.monotonic() - started, {}, str(error)[:200]
        return response.status_code, time.monotonic() - started, dict(response.headers), response.text

    live_during_burst: list[int] = []

    def probe_servers() -> None:
        # each server's liveness probe, straight to the server, while the burst is on
        time.sleep(HOLD_SECONDS / 2)
        for port in cluster_settings.app_ports:
            answer = requests.get(f"http://127.0.0.1:{port}/health/live", timeout=5)
            live_during_burst.append(answer.status_code)

    with ThreadPoolExecutor(max_workers=burst + 1) as pool:
        futures = [pool.submit(one, index) for index in range(burst)]
        start.wait(timeout=60)
        prober = threading.Thread(target=probe_servers)
        prober.start()
        results = [future.result() for future in futures]
        prober.join()

    statuses = [status for status, _, _, _ in results]
    # then: nothing but 200s and 503s: no 502/504, no socket error, no timeout
    assert set(statuses) <= {200, 503}, sorted(
        {(str(s), text[:100]) for s, _, _, text in results if s not in (200, 503)}
    )
    served = [r for r in results if r[0] == 200]
    shed = [r for r in results if r[0] == 503]
    assert len(served) >= servers  # every server kept serving
    assert len(shed) >= burst - admitted - servers * 4  # the excess was shed, not queued
    # and each shed request is the edge's JSON answer with Retry-After, quicker than any served one
    for _, _, headers, text in shed:
        assert headers.get("Retry-After") == "1"
        assert headers.get("Content-Type") == "application/json"
        assert '"error":"overloaded"' in text
    shed_seconds = statistics.median(seconds for _, seconds, _, _ in shed)
    assert shed_seconds < HOLD_SECONDS / 2, f"median 503 took {shed_seconds:.2f} s"
    # and the servers' own liveness answered during the burst
    assert live_during_burst == [200] * servers
    # and right after it, no server was taken out: all of them answer through NGINX again
    seen = set()
    for _ in range(60):
        answer = http.get(f"{nginx_url}/health", timeout=10)
        assert answer.status_code == 200
        seen.add(answer.headers.get("X-Served-By"))
    assert len(seen) == servers
