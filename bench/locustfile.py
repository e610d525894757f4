"""The mixed scenario: church staff read their messages and send some, while the SMS provider
calls the inbound webhook and, once a second, someone logs in.

Run by ``bench/run.py`` as a separate process (``locust`` patches sockets with gevent: never
import this file into the app or the tests). It reads what it needs from the JSON file named by
``BENCH_FIXTURE`` (written by ``bench/prepare.py``): the demo user, the church's linked number,
some contact phones and ids, signed-in API tokens, the webhook secret and NGINX's rate-limit
bypass token. Staff users start with one of the tokens: a login is a password hash (PBKDF2,
about half a CPU-second here by design), so thousands of users logging in at once would measure
only that. Logins run at a steady one per second from a user class of their own.

``BENCH_WAIT_MIN``/``BENCH_WAIT_MAX`` (seconds) are each user's think time between requests:
0 for a throughput run, a few seconds for "N concurrent users" the way people use the API.

With ``BENCH_MIX=1`` only :class:`MixedStaff` runs, the realistic mix: every request is made as
the staff of one of many churches (the fixture's ``mix``, picked at random each time, so each
app process's token cache is mostly cold), over different pages, single messages, the contact
filter, sends and the provider's delivery reports and inbound messages, interleaved.
"""

import hashlib
import hmac
import json
import os
import random
import time
import uuid
from typing import Any

from locust import FastHttpUser, between, constant, task

FIXTURE = json.loads(open(os.environ["BENCH_FIXTURE"]).read())  # noqa: SIM115
WAIT_MIN = float(os.environ.get("BENCH_WAIT_MIN", "0"))
WAIT_MAX = float(os.environ.get("BENCH_WAIT_MAX", "0"))
BYPASS = {"X-RateLimit-Bypass": FIXTURE["bypass_token"]} if FIXTURE.get("bypass_token") else {}
MIX = os.environ.get("BENCH_MIX") == "1"


def _signed(body: str) -> dict[str, str]:
    """The provider's signature headers (messaging/inbound/webhooks.py): an HMAC of
    "<timestamp>." and the body."""
    timestamp = str(int(time.time()))
    signed = f"{timestamp}.{body}".encode()
    signature = hmac.new(FIXTURE["webhook_secret"].encode(), signed, hashlib.sha256).hexdigest()
    return {
        **BYPASS,
        "Content-Type": "application/json",
        "X-Signature": f"sha256={signature}",
        "X-Signature-Timestamp": timestamp,
    }


class ChurchStaff(FastHttpUser):
    abstract = MIX
    wait_time = between(WAIT_MIN, WAIT_MAX)
    insecure = True  # the cluster's self-signed certificate
    connection_timeout = 30.0
    network_timeout = 60.0

    def on_start(self) -> None:
        token = random.choice(FIXTURE["tokens"])
        self.headers = {**BYPASS, "Authorization": f"Bearer {token}"}

    @task(12)
    def list_messages(self) -> None:
        self.client.get("/api/messages?limit=50", headers=self.headers, name="GET /api/messages")

    @task(2)
    def send_message(self) -> None:
        payload = {"contact_id": random.choice(FIXTURE["contact_ids"]), "body": "Bench: see you on Sunday"}
        headers = {**self.headers, "Idempotency-Key": uuid.uuid4().hex}
        self.client.post("/api/messages", json=payload, headers=headers, name="POST /api/messages")

    @task(3)
    def inbound_sms(self) -> None:
        body = json.dumps(
            {
                "message_id": f"bench-{uuid.uuid4().hex}",
                "from": random.choice(FIXTURE["contact_phones"]),
                "to": FIXTURE["linked_phone"],
                "body": "Thanks, see you there",
            }
        )
        self.client.post(
            "/webhooks/sms/inbound", data=body, headers=_signed(body), name="POST /webhooks/sms/inbound"
        )


class StaffLoggingIn(FastHttpUser):
    """One user, outside the count of the others: a login a second, then the token is dropped."""

    abstract = MIX
    fixed_count = 1
    wait_time = constant(1)
    insecure = True
    connection_timeout = 30.0
    network_timeout = 60.0

    @task
    def log_in(self) -> None:
        credentials = {"username": FIXTURE["username"], "password": FIXTURE["password"]}
        with self.client.post(
            "/auth/login", json=credentials, headers=BYPASS, name="POST /auth/login", catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"login answered {response.status_code}")


class MixedStaff(FastHttpUser):
    """The realistic mix (``BENCH_MIX=1``): many churches' staff, reads and writes interleaved."""

    abstract = not MIX
    wait_time = between(WAIT_MIN, WAIT_MAX)
    insecure = True
    connection_timeout = 30.0
    network_timeout = 60.0

    def _as_someone(self) -> tuple[dict[str, Any], dict[str, str]]:
        church = random.choice(FIXTURE["mix"])
        return church, {**BYPASS, "Authorization": f"Bearer {church['token']}"}

    @task(6)
    def first_page(self) -> None:
        _church, headers = self._as_someone()
        self.client.get("/api/messages?limit=20", headers=headers, name="GET /api/messages")

    @task(3)
    def later_page(self) -> None:
        church, headers = self._as_someone()
        after = random.choice(church["message_ids"])
        self.client.get(
            f"/api/messages?limit=20&after={after}", headers=headers, name="GET /api/messages?after="
        )

    @task(3)
    def one_message(self) -> None:
        church, headers = self._as_someone()
        message = random.choice(church["message_ids"])
        self.client.get(f"/api/messages/{message}", headers=headers, name="GET /api/messages/{id}")

    @task(2)
    def contact_filter(self) -> None:
        church, headers = self._as_someone()
        contact = random.choice(church["contact_ids"])
        self.client.get(
            f"/api/messages?limit=20&contact={contact}", headers=headers, name="GET /api/messages?contact="
        )

    @task(2)
    def send(self) -> None:
        church, headers = self._as_someone()
        payload = {"contact_id": random.choice(church["contact_ids"]), "body": "Bench: see you on Sunday"}
        self.client.post(
            "/api/messages",
            json=payload,
            headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
            name="POST /api/messages",
        )

    @task(2)
    def delivery_report(self) -> None:
        church, _headers = self._as_someone()
        # Each report must differ, as a provider's reports of different events do: the webhook
        # refuses a signature it has accepted before (a replay). "error" is kept only for failed
        # messages, so a report id in it changes nothing else.
        report = {"message_id": random.choice(church["provider_message_ids"]), "status": "delivered"}
        body = json.dumps({**report, "error": f"report {uuid.uuid4().hex}"})
        self.client.post(
            "/webhooks/sms/status", data=body, headers=_signed(body), name="POST /webhooks/sms/status"
        )

    @task(1)
    def inbound(self) -> None:
        church, _headers = self._as_someone()
        body = json.dumps(
            {
                "message_id": f"bench-{uuid.uuid4().hex}",
                "from": random.choice(church["contact_phones"]),
                "to": church["linked_phone"],
                "body": "Thanks, see you there",
            }
        )
        self.client.post(
            "/webhooks/sms/inbound", data=body, headers=_signed(body), name="POST /webhooks/sms/inbound"
        )
