"""The mixed scenario: church staff log in, read their messages and send some, while the SMS
provider calls the inbound webhook.

Run by ``bench/run.py`` as a separate process (``locust`` patches sockets with gevent: never
import this file into the app or the tests). It reads what it needs from the JSON file named by
``BENCH_FIXTURE`` (written by ``bench/prepare.py``): the demo user, the church's linked number,
some contact phones and ids, the webhook secret and NGINX's rate-limit bypass token.

``BENCH_WAIT_MIN``/``BENCH_WAIT_MAX`` (seconds) are each user's think time between requests:
0 for a throughput run, a few seconds for "N concurrent users" the way people use the API.
"""

import hashlib
import hmac
import json
import os
import random
import uuid

from locust import FastHttpUser, between, task

FIXTURE = json.loads(open(os.environ["BENCH_FIXTURE"]).read())  # noqa: SIM115
WAIT_MIN = float(os.environ.get("BENCH_WAIT_MIN", "0"))
WAIT_MAX = float(os.environ.get("BENCH_WAIT_MAX", "0"))
BYPASS = {"X-RateLimit-Bypass": FIXTURE["bypass_token"]} if FIXTURE.get("bypass_token") else {}


class ChurchStaff(FastHttpUser):
    wait_time = between(WAIT_MIN, WAIT_MAX)
    insecure = True  # the cluster's self-signed certificate
    connection_timeout = 30.0
    network_timeout = 60.0

    def on_start(self) -> None:
        self.headers = dict(BYPASS)
        self.login()

    def login(self) -> None:
        credentials = {"username": FIXTURE["username"], "password": FIXTURE["password"]}
        with self.client.post(
            "/auth/login", json=credentials, headers=BYPASS, name="POST /auth/login", catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"login answered {response.status_code}")
                return
            self.headers = {**BYPASS, "Authorization": f"Bearer {response.json()['token']}"}

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
        signature = hmac.new(FIXTURE["webhook_secret"].encode(), body.encode(), hashlib.sha256).hexdigest()
        headers = {**BYPASS, "Content-Type": "application/json", "X-Signature": signature}
        self.client.post(
            "/webhooks/sms/inbound", data=body, headers=headers, name="POST /webhooks/sms/inbound"
        )

    @task(1)
    def log_in_again(self) -> None:
        self.login()
