"""A rolling deploy: a beat of the previous release sends messaging's jobs by their former task
names (``jobs.<job>``), and the new workers still run them."""

from __future__ import annotations

import uuid

import pytest

from tests.cluster.jobs.conftest import TEST_ENV, ClusterDb, now
from tests.support import cluster_env, manage, wait_until

pytestmark = pytest.mark.cluster

# What an old beat publishes: the task by its former name, the tick stamped as TickScheduler does.
_SEND = """
import os
from config.celery import app
app.send_task(
    os.environ["ALIAS_TEST_TASK"],
    kwargs={"tick": os.environ["ALIAS_TEST_TICK"]},
    task_id=os.environ["ALIAS_TEST_TASK_ID"],
    queue=os.environ["JOBS_QUEUE"],
)
"""


@pytest.mark.parametrize(
    ("former_name", "job"),
    [
        ("jobs.recurring_messages", "recurring-messages"),
        ("jobs.messages_sweep", "messages-sweep"),
        ("jobs.phone_linking_recovery", "phone-linking-recovery"),
    ],
)
def test_a_job_sent_by_its_former_task_name_is_run_by_the_new_workers(
    fast_jobs_tier, cluster_db: ClusterDb, cluster_settings, former_name, job
):
    # given the new workers, and a delivery sent by the job's former task name
    task_id = f"alias-test-{uuid.uuid4()}"
    env = cluster_env(
        cluster_settings, **TEST_ENV,
        ALIAS_TEST_TASK=former_name, ALIAS_TEST_TICK=now().isoformat(), ALIAS_TEST_TASK_ID=task_id,
    )  # fmt: skip
    sent = manage("shell", "-c", _SEND, env=env, timeout=120)
    assert sent.returncode == 0, sent.stderr[-2000:]

    # when a worker takes it: then the job of that name went through the framework with it (a
    # ledger row carries the delivery's task id, whether it ran the tick or found it run already)
    row = wait_until(
        lambda: cluster_db.rows("SELECT job, outcome FROM jobs_jobrun WHERE task_id = %s", task_id),
        timeout=30,
        interval=0.02,
        message=f"no worker ran the delivery of {former_name}",
    )
    assert row[0][0] == job
