"""A job delivery on the cluster moves the job metrics of the server whose Celery worker ran it."""

import pytest
from celery import Celery

from deploy.local import cluster
from deploy.local.cluster import sentinel
from tests.cluster.observability.conftest import scrape
from tests.support import wait_until

pytestmark = pytest.mark.cluster

JOB = "recurring-messages"


def _job_deliveries(cfg: cluster.Settings) -> float:
    """Deliveries of the job counted by every server's /metrics, whatever their outcome."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for port in cfg.app_ports:
        if not cluster.port_open(port):
            continue
        for family in text_string_to_metric_families(scrape(port)):
            for sample in family.samples:
                if sample.name == "app_job_runs_total" and sample.labels.get("job") == JOB:
                    total += sample.value
    return total


def test_a_job_delivery_moves_the_job_counter_on_the_server_that_ran_it(cluster_settings):
    # given the cluster's count of deliveries of the job
    before = _job_deliveries(cluster_settings)
    broker = Celery(broker=sentinel.master_url(cluster_settings, 0))
    # when the job is delivered once more, like beat does (its current tick: run, or skipped
    # as a duplicate when beat's delivery already ran it)
    broker.send_task("messaging.recurring_messages")
    # then some server's /metrics counts it, within a few seconds
    wait_until(
        lambda: _job_deliveries(cluster_settings) >= before + 1,
        timeout=30,
        interval=0.5,
        message=f"no server counted one more delivery of {JOB} than {before}",
    )
