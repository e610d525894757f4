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


def test_quick_requests_avoid_the_servers_busy_with_slow_ones(http, nginx_url, cluster_settings):
    def slow_request() -> requests.Response:
        session = requests.Session()
        session.trust_env, session.verify, session.headers = False, http.verify, http.headers
        return session.get(f"{nginx_url}/health/debug/slow?seconds=2", timeout=10)

    with ThreadPoolExecutor(max_workers=2) as pool:
        # given: two slow requests in flight, so on two different servers
        slow = [pool.submit(slow_request)]
        time.sleep(0.2)
        slow.append(pool.submit(slow_request))
        time.sleep(0.3)
        # when: quick requests, one after another, while they run
        quick = [http.get(f"{nginx_url}/health", timeout=5).headers["X-Served-By"] for _ in range(20)]
        busy = [future.result().headers["X-Served-By"] for future in slow]
    # then: every quick request went to the one idle server
    assert len(set(busy)) == 2
    idle = set(cluster_settings.server_names) - set(busy)
    assert set(quick) == idle
