"""The live servers' operations side: probes, metrics per server, JSON logs with request ids."""

import json
import uuid

import pytest
import requests

from deploy.local import cluster
from deploy.nginx.render import RATELIMIT_BYPASS_HEADER
from tests.cluster.live.conftest import LiveConnectRefused
from tests.support import wait_until

pytestmark = pytest.mark.cluster


def _metric(port: int, name: str, **labels: str) -> float:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    wanted = name + ("{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else "")
    for line in text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.split()[-1])
    return 0.0


def test_each_live_server_answers_its_probes(cluster_settings):
    for port in cluster_settings.live_ports:
        live = requests.get(f"http://127.0.0.1:{port}/health/live", timeout=5)
        ready = requests.get(f"http://127.0.0.1:{port}/health/ready", timeout=5)
        assert (live.status_code, ready.status_code) == (200, 200)
        assert ready.headers["Content-Type"] == "application/health+json"
        assert set(ready.json()["checks"]) >= {
            "database:responseTime",
            "broker-redis:responseTime",
            "server:draining",
        }


def test_metrics_count_connections_and_events_and_the_log_carries_the_request_id(
    churches, login, live_client, post_inbound, cluster_settings
):
    # given: a client connected with its own request id
    token = login(churches["a"])
    request_id = f"live-test-{uuid.uuid4().hex}"
    client = live_client(token, headers={"X-Request-ID": request_id})
    server = str(client.whoami()["server"])
    live_port = cluster_settings.live_ports[cluster_settings.server_names.index(server)]
    app_port = cluster_settings.app_ports[cluster_settings.server_names.index(server)]
    delivered_before = _metric(live_port, "app_live_events_delivered_total", event="message.inbound")
    emitted_before = _metric(
        app_port, "app_live_events_emitted_total", event="message.inbound", outcome="published"
    )
    # when: an SMS arrives through that server's webhook
    message_id = post_inbound(server=server, to=churches["a"].phone, body="metrics")
    assert client.wait_for(lambda: message_id in client.seen_ids)
    # then: the live server counts the connection and the delivery; the app server the publish
    assert _metric(live_port, "app_live_connections") >= 1
    assert _metric(live_port, "app_live_events_delivered_total", event="message.inbound") > delivered_before
    app_emitted = _metric(
        app_port, "app_live_events_emitted_total", event="message.inbound", outcome="published"
    )
    assert app_emitted > emitted_before
    # and the connect is one JSON line with that request id and the church
    log = cluster_settings.log_dir / f"live-{server}.log"
    lines = wait_until(
        lambda: [json.loads(line) for line in log.read_text().splitlines() if request_id in line],
        timeout=5,
        interval=0.1,
        message=f"no line of {log.name} has the request id",
    )
    assert [(line["message"], line["church_id"]) for line in lines][:1] == [("connect", churches["a"].id)]


def test_a_plain_http_request_to_socketio_gets_no_polling_session(cluster_settings, nginx_url):
    # WebSocket only: long-polling would need sticky sessions the edge does not keep
    session = requests.Session()
    session.trust_env = False
    session.verify = str(cluster_settings.state_dir / "nginx" / "tls.crt")
    answer = session.get(
        f"{nginx_url}/socket.io/?EIO=4&transport=polling",
        headers={RATELIMIT_BYPASS_HEADER: cluster_settings.ratelimit_bypass_token()},
        timeout=5,
    )
    assert answer.status_code == 400


def test_a_connect_whose_token_cannot_be_checked_is_refused_with_a_reason(
    churches, login, live_client, cluster_settings
):
    # given: a fresh token (in no server's token cache) and the primary out of reach: both
    # PgBouncers stopped (with one, the app reaches the primary through the other)
    token = login(churches["a"])
    poolers = ["pgbouncer", "pgbouncer2"]
    cluster.stop(poolers, cluster_settings)
    try:
        # when: a client connects with it
        with pytest.raises(LiveConnectRefused) as refusal:
            live_client(token, reconnection=False)
    finally:
        services = cluster.services(cluster_settings)
        for name in poolers:
            cluster.start_service(services[name], cluster_settings)
    # then: the server refused it, saying why, rather than leaving the connect unanswered
    messages = [str(r.get("message")) for r in refusal.value.reasons if isinstance(r, dict)]
    assert messages == ["the token could not be checked: reconnect"], refusal.value
    # and once the primary is back, the same token connects
    assert live_client(token).whoami()["church_id"] == churches["a"].id
