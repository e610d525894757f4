"""least_conn: NGINX sends a new request to the app server with the fewest requests in flight.

(That every server gets requests at all is tests/cluster/test_cluster.py's
``test_nginx_reaches_every_app_server``.) Round robin would spread quick requests over all three
servers; least_conn keeps them off the servers that are busy with a slow request.
"""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

pytestmark = pytest.mark.cluster


def busy_and_quick(http, nginx_url) -> tuple[list[str], list[str]]:
    """Which servers took two slow requests, and which took 10 quick ones sent meanwhile."""

    def connected_session() -> requests.Session:
        session = requests.Session()
        session.trust_env, session.verify, session.headers = False, http.verify, http.headers
        session.get(f"{nginx_url}/health", timeout=10)  # TLS done now, not while timing matters
        return session

    slow_sessions = [connected_session(), connected_session()]
    http.get(f"{nginx_url}/health", timeout=10)
    with ThreadPoolExecutor(max_workers=2) as pool:
        slow = []
        for session in slow_sessions:
            slow.append(pool.submit(session.get, f"{nginx_url}/health/debug/slow?seconds=3", timeout=15))
            time.sleep(0.3)
        quick = [http.get(f"{nginx_url}/health", timeout=5).headers["X-Served-By"] for _ in range(10)]
        assert not any(future.done() for future in slow), "the quick requests took too long"
        busy = [future.result().headers["X-Served-By"] for future in slow]
    return busy, quick


def test_quick_requests_avoid_the_servers_busy_with_slow_ones(http, nginx_url, cluster_settings):
    # Other clients' requests in flight (a parallel test session) also count for least_conn, so
    # up to three tries; round robin would put 10 quick requests on one server by chance with
    # probability (1/3)^10 per try, so a pass still means least_conn.
    tries = []
    for _ in range(3):
        # given: two slow requests in flight, and when: quick requests meanwhile
        busy, quick = busy_and_quick(http, nginx_url)
        idle = set(cluster_settings.server_names) - set(busy)
        tries.append((busy, quick))
        # then: the slow ones went to two servers, every quick one to the third
        if len(set(busy)) == 2 and set(quick) == idle:
            break
    else:
        pytest.fail(f"least_conn did not show in {tries}")
