"""What the broker's Sentinels say, as the health report and /metrics read it (ADR 0019)."""

import pytest
from django.conf import settings

from config import redis_urls
from config.broker_sentinel import BrokerCollector, broker_state
from health import checks

pytestmark = pytest.mark.integration


@pytest.fixture
def sentinel_url() -> str:
    if not redis_urls.is_sentinel(settings.BROKER_REDIS_URL):
        pytest.skip("the broker is a single node here (no BROKER_SENTINELS)")
    return str(settings.BROKER_REDIS_URL)


def test_the_state_names_the_master_the_sentinels_name_with_its_replica(sentinel_url):
    # given the master as redis-py's Sentinel client finds it
    host, port = redis_urls.sentinel(sentinel_url, socket_timeout=1).discover_master(
        redis_urls.sentinel_master_name(sentinel_url)
    )
    # when the state is read
    state = broker_state(sentinel_url, timeout=1.0)
    # then it is that master, with its replica in sync and every Sentinel answering
    assert state is not None
    assert state.master == f"{host}:{port}"
    assert (state.replicas, state.sentinels) == (1, len(redis_urls.sentinel_hosts(sentinel_url)))


def test_a_master_name_no_sentinel_knows_reads_as_no_state_and_fails_the_health_check(sentinel_url):
    unknown = sentinel_url.rsplit("/", 1)[0] + "/no-such-master"
    assert broker_state(unknown, timeout=1.0) is None
    with pytest.raises(checks.ServiceUnavailable, match="no Sentinel names the master"):
        checks.broker_master(url=unknown, timeout=1.0, deadline=float("inf"))
    with pytest.raises(checks.ServiceUnavailable, match="no master of that name"):
        checks.redis_response_time(url=unknown, timeout=1.0, deadline=float("inf"))


def test_the_collector_exports_the_gauges_the_alerts_read(sentinel_url):
    # when /metrics collects
    families = {family.name: family.samples[0].value for family in BrokerCollector(sentinel_url).collect()}
    # then every gauge an alert in deploy/monitoring/alerts.yml reads is there
    assert families["app_broker_master_known"] == 1
    assert families["app_broker_replicas"] == 1
    assert families["app_broker_sentinels"] == 3
    assert families["app_broker_failover_epoch"] >= 0
    # and a name no Sentinel knows reads as no master
    unknown = sentinel_url.rsplit("/", 1)[0] + "/no-such-master"
    assert [(f.name, f.samples[0].value) for f in BrokerCollector(unknown).collect()] == [
        ("app_broker_master_known", 0)
    ]
