"""SIGTERM drains a server before it stops: the probes flip to 503 at once, requests in flight and
new ones are still served for the drain period, then gunicorn stops gracefully.

Each test runs its own gunicorn (the cluster's config, a 3 s drain, the slow endpoint on), so
the cluster's servers keep serving the other tests.
"""

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.cluster.health.conftest import check, first_probe_with, probe
from tests.cluster.procs import child_pids
from tests.support import wait_until

pytestmark = pytest.mark.cluster

DRAIN_SECONDS = 3.0


def _slow_request(url: str, seconds: float):
    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(requests.get, f"{url}/health/debug/slow?seconds={seconds}", timeout=30)
    pool.shutdown(wait=False)
    time.sleep(0.5)  # let it reach a worker before anything else happens
    assert not future.done()
    return future


def test_sigterm_fails_readiness_at_once_and_finishes_the_request_in_flight(side_server):
    # given: a server answering, and a request that outlasts the drain period already running
    server = side_server(HEALTH_DRAIN_SECONDS=str(DRAIN_SECONDS), HEALTH_DEBUG_SLOW_ENDPOINT="1")
    before = probe(f"{server.url}/health/ready")
    assert check(before.body, "server:draining")["observedValue"] is False
    slow = _slow_request(server.url, seconds=DRAIN_SECONDS + 1)

    # when
    server.process.send_signal(signal.SIGTERM)
    signalled = time.monotonic()

    # then: the balancer's probes fail within a second, liveness does not
    ready = first_probe_with(f"{server.url}/health/ready", lambda answer: answer.status_code == 503, within=1)
    assert check(ready.body, "server:draining")["status"] == "fail"
    assert probe(f"{server.url}/health").status_code == 503
    assert probe(f"{server.url}/health/live").status_code == 200
    # and new requests are still served while the balancer catches up
    assert requests.get(f"{server.url}/health/debug/slow?seconds=0", timeout=10).status_code == 200
    assert time.monotonic() - signalled < DRAIN_SECONDS
    # and the request that was in flight completes
    assert slow.result(timeout=30).status_code == 200
    # and the server stops by itself, cleanly, only after the drain period
    assert server.process.wait(timeout=30) == 0
    assert time.monotonic() - signalled >= DRAIN_SECONDS


def test_sigterm_sent_to_the_workers_alone_finishes_their_requests_and_keeps_the_server_up(side_server):
    # given: (a short worker timeout, so an idle worker wakes up soon to notice its signal)
    server = side_server(
        HEALTH_DRAIN_SECONDS=str(DRAIN_SECONDS), HEALTH_DEBUG_SLOW_ENDPOINT="1", GUNICORN_TIMEOUT="4"
    )
    workers = child_pids(server.process.pid)
    assert len(workers) == 2
    slow = _slow_request(server.url, seconds=1.5)

    # when: e.g. a process manager that signals every process of the group
    for worker in workers:
        os.kill(worker, signal.SIGTERM)  # the signal under test, to the master's workers only

    # then: the request in flight completes, the master replaces the workers and does not drain
    assert slow.result(timeout=30).status_code == 200
    answer = first_probe_with(f"{server.url}/health/ready", lambda a: a.status_code == 200, within=15)
    assert check(answer.body, "server:draining")["observedValue"] is False
    wait_until(  # an idle worker notices at its next wake-up
        lambda: child_pids(server.process.pid).isdisjoint(workers),
        timeout=20,
        interval=0.2,
        message=f"the signalled workers {workers} still run",
    )
    assert probe(f"{server.url}/health").status_code == 200
    assert server.process.poll() is None
