"""Probe results are shared for a moment within a process; the drain flag never is."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from health import drain, runner

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def draining():
    drain.start_draining()
    yield
    drain.stop_draining()


def _primary_checked_at(report) -> object:
    return report.find("database:responseTime", "primary").time


def test_balancers_polling_at_once_cost_one_round_of_checks(settings):
    # given
    settings.HEALTH_CACHE_SECONDS = 5

    # when: ten probes at the same time in one process
    with ThreadPoolExecutor(max_workers=10) as pool:
        reports = list(pool.map(lambda _: runner.ready_report(), range(10)))

    # then: every one carries the same measurement
    assert len({_primary_checked_at(report) for report in reports}) == 1


def test_without_the_cache_every_probe_checks_again(settings):
    # given
    settings.HEALTH_CACHE_SECONDS = 0

    # when
    first, second = runner.ready_report(), runner.ready_report()

    # then
    assert _primary_checked_at(first) != _primary_checked_at(second)


@pytest.mark.usefixtures("draining")
def test_a_drain_fails_ready_at_once_even_with_a_fresh_cached_result(client, settings):
    # given: a passing result cached just before the drain began
    settings.HEALTH_CACHE_SECONDS = 60
    drain.stop_draining()
    assert client.get("/health/ready").status_code == 200
    drain.start_draining()

    # when
    ready, balancer, live = (client.get(path) for path in ("/health/ready", "/health", "/health/live"))

    # then
    assert ready.status_code == 503
    assert ready.json()["checks"]["server:draining"][0]["status"] == "fail"
    assert balancer.status_code == 503
    assert live.status_code == 200
