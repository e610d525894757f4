"""Live updates end to end: a real Socket.IO client through NGINX, webhooks on other servers."""

import json
import threading
import time
import uuid

import pytest
import requests

from deploy.local import cluster
from messaging.inbound.webhooks import webhook_headers
from tests.cluster.live.conftest import WEBHOOK_SECRET, LiveClient, LiveConnectRefused, signed_inbound
from tests.support import wait_until

pytestmark = pytest.mark.cluster


def test_an_inbound_sms_posted_on_another_server_reaches_the_connected_client(
    churches, login, live_client, post_inbound, session, nginx_url, cluster_settings
):
    # given: a staff member of church A connected through NGINX to one live server
    token = login(churches["a"])
    client = live_client(token)
    connected_to = client.whoami()
    assert connected_to["church_id"] == churches["a"].id
    other = next(name for name in cluster_settings.server_names if name != connected_to["server"])

    # when: an SMS to church A's number arrives through the webhook on another app server
    message_id = post_inbound(server=other, to=churches["a"].phone, body="Can I bring a friend?")

    # then: the event arrives, with the same fields as the API's message
    assert client.wait_for(lambda: message_id in client.seen_ids), client.events
    [(event, payload)] = [(e, p) for e, p in client.events if p["id"] == message_id]
    # (the event can beat the replica the API reads from: ask until the message is there)
    auth = {"Authorization": f"Bearer {token}"}
    for _ in range(50):
        api = session.get(f"{nginx_url}/api/messages/{message_id}", headers=auth, timeout=10)
        if api.status_code != 404:
            break
        time.sleep(0.1)
    assert event == "message.inbound"
    assert payload == api.json()
    assert payload["body"] == "Can I bring a friend?"


def test_a_revoked_wrong_or_missing_token_is_refused_at_connect(
    churches, login, live_client, session, nginx_url
):
    # given: a token that worked, then was revoked by logging out
    token = login(churches["a"])
    live_client(token).client.disconnect()
    logout = session.post(
        f"{nginx_url}/auth/logout", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert logout.status_code == 204
    # when / then
    for refused, reason in (
        (token, "the token is not valid"),
        ("not-a-token", "the token is not valid"),
        ("", "send the bearer token"),
    ):
        with pytest.raises(LiveConnectRefused) as refusal:
            live_client(refused, reconnection=False)
        # refused by the server with its reason, not a connect left unanswered
        messages = [str(r.get("message")) for r in refusal.value.reasons if isinstance(r, dict)]
        assert len(messages) == 1 and messages[0].startswith(reason), refusal.value


def test_another_churchs_events_never_arrive(churches, login, live_client, post_inbound, cluster_settings):
    # given: one client per church, on whichever servers NGINX picks
    clients = {key: live_client(login(church)) for key, church in churches.items()}
    servers = cluster_settings.server_names

    # when: each church receives SMS through webhooks on every app server
    sent: dict[str, set[int]] = {"a": set(), "b": set()}
    for server in servers:
        for key, church in churches.items():
            sent[key].add(post_inbound(server=server, to=church.phone, body=f"hello {key} via {server}"))

    # then: each client gets all of its church's events
    for key, client in clients.items():
        assert client.wait_for(lambda c=client, k=key: sent[k] <= c.seen_ids), (key, client.events)
    time.sleep(1.0)  # and, after a while longer, nothing of the other church
    assert clients["a"].seen_ids.isdisjoint(sent["b"])
    assert clients["b"].seen_ids.isdisjoint(sent["a"])


def test_a_server_restarted_under_200_connections_loses_none_for_good(
    churches, login, live_client, cluster_settings, nginx_url, session, exclusive_app_servers
):
    # given: 200 clients of church A spread over the live servers by NGINX
    token = login(churches["a"])
    clients = [live_client(token) for _ in range(200)]
    placed: dict[str, list[LiveClient]] = {name: [] for name in cluster_settings.server_names}
    for client in clients:
        placed[str(client.whoami()["server"])].append(client)
    victim = max(placed, key=lambda name: len(placed[name]))
    assert len(placed[victim]) >= 20, {name: len(on) for name, on in placed.items()}
    drained: list[object] = []
    for client in placed[victim]:
        client.client.on("server.draining", drained.append)
    servers = cluster_settings.server_names
    posted: list[int] = []
    webhook_ports = dict(zip(servers, cluster_settings.app_ports, strict=True))

    def post(index: int) -> None:
        data, headers = signed_inbound(to=churches["a"].phone, body=f"during restart {index}")
        port = webhook_ports[servers[index % len(servers)]]
        answer = requests.post(f"http://127.0.0.1:{port}/webhooks/sms/inbound", data=data, headers=headers,
                               timeout=10)  # fmt: skip
        assert answer.status_code == 200, answer.text
        posted.append(int(answer.json()["message_id"]))

    # and every client has seen a first message (a page shows the list, then listens)
    post(0)
    for client in clients:
        assert client.wait_for(lambda c=client: posted[0] in c.seen_ids)

    # when: its live server restarts (SIGTERM: drain, stop, start again) while SMS keep arriving
    stop = threading.Event()

    def keep_posting() -> None:
        index = 0
        while not stop.is_set():
            post(index)
            index += 1
            time.sleep(0.1)

    poster = threading.Thread(target=keep_posting)
    poster.start()
    try:
        cluster.restart(f"live-{victim}", cluster_settings)
        time.sleep(1.0)
    finally:
        stop.set()
        poster.join(timeout=30)

    # then: every client is connected again, was told to go, and has every message: from an event,
    # or from re-reading the API after it reconnected
    wait_until(
        lambda: all(c.client.connected for c in clients),
        timeout=60,
        interval=0.2,
        message=lambda: f"{sum(not c.client.connected for c in clients)} clients are not connected again",
    )
    post(-1)  # and one more once every client is back
    expected = set(posted)
    assert len(drained) == len(placed[victim])
    assert all(c.connects >= 2 for c in placed[victim])
    for client in clients:
        assert client.wait_for(lambda c=client: expected <= (c.seen_ids | c.recovered_ids), timeout=20), (
            sorted(expected - client.seen_ids - client.recovered_ids),
            client.errors,
            client.disconnects,
        )


def test_an_open_connection_whose_token_is_revoked_is_disconnected(
    churches, login, live_client, session, nginx_url
):
    # given: a connected client
    token = login(churches["b"])
    client = live_client(token, reconnection=False)
    assert client.client.connected
    # when: the token is revoked
    logout = session.post(
        f"{nginx_url}/auth/logout", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert logout.status_code == 204
    # then: the server disconnects it at its next token check (every 2 s in the local cluster)
    assert client.wait_for(lambda: not client.client.connected, timeout=15)


def test_a_send_and_its_delivery_report_reach_the_client_from_the_worker_and_the_webhook(
    churches, login, live_client, session, nginx_url, cluster_settings
):
    # given: a connected staff member and a contact of their church
    token = login(churches["a"])
    client = live_client(token)
    auth = {"Authorization": f"Bearer {token}"}
    for _ in range(5):  # a random number a past run gave the church already is a conflict: draw again
        phone = f"+1212{uuid.uuid4().int % 7_000_000 + 2_000_000:07d}"
        contact = session.post(f"{nginx_url}/api/contacts", json={"phone": phone}, headers=auth, timeout=10)
        if contact.status_code != 409:
            break
    assert contact.status_code == 201, contact.text
    # when: a message is sent (a Celery worker hands it to the provider) ...
    sent = session.post(
        f"{nginx_url}/api/messages", json={"contact_id": contact.json()["id"], "body": "See you Sunday"},
        headers=auth, timeout=10,
    )  # fmt: skip
    assert sent.status_code == 201, sent.text
    message_id = sent.json()["messages"][0]["id"]
    assert client.wait_for(
        lambda: any(e == "message.sent" and p["id"] == message_id for e, p in client.events)
    )
    [provider_id] = [
        p["provider_message_id"] for e, p in client.events if e == "message.sent" and p["id"] == message_id
    ]
    # ... and the provider reports it delivered, through another server's webhook
    data = json.dumps({"message_id": provider_id, "status": "delivered"}).encode()
    headers = {"Content-Type": "application/json", **webhook_headers(body=data, secret=WEBHOOK_SECRET)}
    port = cluster_settings.app_ports[-1]
    report = requests.post(
        f"http://127.0.0.1:{port}/webhooks/sms/status", data=data, headers=headers, timeout=10
    )
    assert report.status_code == 200, report.text
    # then: both changes arrived, in order, with the status the API shows
    assert client.wait_for(
        lambda: any(e == "message.status" and p["id"] == message_id for e, p in client.events)
    ), client.events
    mine = [(e, p["status"]) for e, p in client.events if p["id"] == message_id]
    assert mine == [("message.sent", "sent"), ("message.status", "delivered")]
