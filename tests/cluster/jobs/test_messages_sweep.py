"""No message is left behind: messages created while the broker is down go out once it is back.

With the broker stopped, ``messages_enqueue``'s publish after the commit fails (logged, the
messages stay ``queued``). The messages-sweep job (every 2 s here, messages queued for 2 s count
as left behind) enqueues them again once the broker is back: every one is sent, once, within two
sweep intervals of the jobs tier running again (workers and beats first reconnect to the broker).
"""

from __future__ import annotations

import time

import pytest

from deploy.local import cluster
from deploy.local.cluster import sentinel
from tests.cluster.jobs.conftest import INTERVAL, ClusterDb, add_contacts
from tests.support import cluster_env, manage, wait_until

pytestmark = pytest.mark.cluster

MESSAGES = 6

_SEND = """
import os
from messaging.sending import services
from messaging.models import Church
church = Church.objects.get(pk=int(os.environ["SWEEP_TEST_CHURCH"]))
for contact_id in os.environ["SWEEP_TEST_CONTACTS"].split(","):
    services.message_send(church=church, contact_ids=[int(contact_id)], body="sent while the broker was down")
"""


def _statuses(db: ClusterDb, church: int) -> dict[str, int]:
    rows = db.rows(
        "SELECT status, count(*) FROM messaging_message WHERE church_id = %s GROUP BY status", church
    )
    return {status: count for status, count in rows}


def test_messages_created_while_the_broker_is_down_are_all_sent_once_it_is_back(
    fast_jobs_tier, cluster_db, church, cluster_settings
):
    cfg = cluster_settings
    add_contacts(cluster_db, church, MESSAGES)
    contact_ids = [
        row[0] for row in cluster_db.rows("SELECT id FROM messaging_contact WHERE church_id = %s", church)
    ]
    # given the broker stopped while the messages are created (the API's service, in a process
    # with the cluster's settings: the publish after each commit fails)
    cluster.stop(list(sentinel.BROKER_NODES), cfg)  # master and replica: no broker at all
    try:
        env = cluster_env(
            cfg, SWEEP_TEST_CHURCH=str(church), SWEEP_TEST_CONTACTS=",".join(map(str, contact_ids))
        )
        created = manage("shell", "-c", _SEND, env=env, timeout=120)
        assert created.returncode == 0, created.stderr[-2000:]
        assert _statuses(cluster_db, church) == {"queued": MESSAGES}
        time.sleep(INTERVAL)  # older than the threshold before the broker is back
    finally:
        for name in sentinel.BROKER_NODES:
            cluster.start_service(cluster.services(cfg)[name], cfg)
    back_at = time.monotonic()
    back_wall = cluster_db.value("SELECT now()")
    # when the broker is back: then every message is sent, exactly once
    wait_until(
        lambda: _statuses(cluster_db, church).get("sent", 0) >= MESSAGES,
        timeout=60,
        interval=0.1,
        message=lambda: f"not every message was sent: {_statuses(cluster_db, church)}",
    )
    took = time.monotonic() - back_at
    sends = cluster_db.rows(
        "SELECT d.idempotency_key, count(*) FROM messaging_developmentsms d"
        " JOIN messaging_message m ON d.idempotency_key = 'message-' || m.id"
        " WHERE m.church_id = %s GROUP BY d.idempotency_key",
        church,
    )
    assert len(sends) == MESSAGES and all(count == 1 for _, count in sends), sends
    # and within two sweep intervals of the jobs tier working again (its first job run after the
    # broker's return: workers and beats reconnect with their own backoff, seconds after a long
    # outage, which no sweep interval can shorten)
    first_run = cluster_db.value("SELECT min(started) FROM jobs_jobrun WHERE started >= %s", back_wall)
    last_sent = cluster_db.value("SELECT max(sent_at) FROM messaging_message WHERE church_id = %s", church)
    assert first_run is not None
    after_tier_back = (last_sent - first_run).total_seconds()
    assert after_tier_back <= 2 * INTERVAL + 1.0, (first_run, last_sent)
    print(
        f"all {MESSAGES} sent {took:.1f} s after the broker came back, "
        f"{after_tier_back:.1f} s after the jobs tier ran again"
    )
