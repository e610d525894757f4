"""Sending SMS: one small interface, a Twilio-style HTTP adapter and a development backend.

``get_gateway()`` returns the backend named by ``settings.MESSAGING_SMS_BACKEND``. Every
backend either returns the provider's message id or raises ``GatewayError``; the caller marks
the message failed with that error, so nothing is lost silently.

Each send carries an idempotency key (one per message). A backend whose provider honours it
(``supports_idempotency_key``) may be asked again with the same key after a worker died waiting
for the answer; one that does not is never asked twice for a message (ADR 0011).
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Protocol

import requests
from django.conf import settings
from django.utils.module_loading import import_string

from config.databases import PRIMARY_DB_ALIAS
from config.retry import capped_backoff

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutboundSms:
    to: str
    from_number: str
    body: str
    # The same for every attempt at one message ("message-<id>"), so a provider can deduplicate.
    idempotency_key: str = ""


class GatewayError(Exception):
    """The provider did not accept the message (after the retries the adapter allows)."""


class SmsGateway(Protocol):
    # True when the provider returns the first answer again for a repeated idempotency key.
    supports_idempotency_key: bool

    def send(self, sms: OutboundSms) -> str:
        """Hand the message to the provider; return its message id or raise GatewayError."""
        ...


class DevelopmentGateway:
    """Sends nothing: records each call in ``DevelopmentSms`` so a person or a test can look.

    Like a provider without idempotency keys, every call is a send: a second call for the same
    message is recorded again, marked ``duplicate`` (admin: Development SMS, filter by it).
    """

    supports_idempotency_key = False

    def send(self, sms: OutboundSms) -> str:
        from messaging.models import DevelopmentSms

        provider_message_id = f"DEV{uuid.uuid4().hex}"
        duplicate = bool(sms.idempotency_key) and (
            DevelopmentSms.objects.using(PRIMARY_DB_ALIAS)
            .filter(idempotency_key=sms.idempotency_key)
            .exists()
        )
        if duplicate:
            logger.error("development gateway: %s was sent before (a duplicate send)", sms.idempotency_key)
        DevelopmentSms.objects.create(
            to=sms.to,
            from_number=sms.from_number,
            body=sms.body,
            provider_message_id=provider_message_id,
            idempotency_key=sms.idempotency_key,
            duplicate=duplicate,
        )
        return provider_message_id


class DeduplicatingDevelopmentGateway(DevelopmentGateway):
    """The development gateway with a real provider's idempotency keys: a call with a key it has
    recorded answers that call's message id again and sends nothing more, so a message whose
    worker died mid-send is resent under its key instead of held for review (ADR 0011).

    Calls with one key are taken one at a time (a transaction-scoped advisory lock on the key,
    safe under PgBouncer's transaction mode), as a provider serialises them.
    """

    supports_idempotency_key = True

    def send(self, sms: OutboundSms) -> str:
        from django.db import connections, transaction

        from messaging.models import DevelopmentSms

        if not sms.idempotency_key:
            return super().send(sms)
        with transaction.atomic(using=PRIMARY_DB_ALIAS):
            with connections[PRIMARY_DB_ALIAS].cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [sms.idempotency_key])
            first = (
                DevelopmentSms.objects.using(PRIMARY_DB_ALIAS)
                .filter(idempotency_key=sms.idempotency_key)
                .order_by("id")
                .values_list("provider_message_id", flat=True)
                .first()
            )
            if first is not None:
                logger.info("development gateway: %s seen before, answered again", sms.idempotency_key)
                return first
            return super().send(sms)


class _Retryable(Exception):
    pass


class HttpSmsGateway:
    """A Twilio-style REST API: ``POST {base}/2010-04-01/Accounts/{sid}/Messages.json``.

    Form-encoded ``To``/``From``/``Body``, HTTP basic auth with the account sid and auth token,
    JSON answer carrying ``sid``. A 5xx answer, a timeout or a refused connection is retried
    with exponential backoff, at most ``max_attempts`` tries in all; a 4xx is final.
    A retry after a read timeout can send twice if the provider did accept the first try,
    unless ``idempotency_header`` (``MESSAGING_SMS_IDEMPOTENCY_HEADER``) names the header the
    provider deduplicates on: then every try carries the message's key, and so does a later
    attempt after a worker died waiting for the answer.
    """

    def __init__(
        self,
        *,
        base_url: str | None = None,
        account_sid: str | None = None,
        auth_token: str | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        max_attempts: int | None = None,
        backoff_seconds: float | None = None,
        backoff_max_seconds: float | None = None,
        status_callback_url: str | None = None,
        idempotency_header: str | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = (base_url or settings.MESSAGING_SMS_API_BASE_URL).rstrip("/")
        self.account_sid = account_sid if account_sid is not None else settings.MESSAGING_SMS_ACCOUNT_SID
        self.auth_token = auth_token if auth_token is not None else settings.MESSAGING_SMS_AUTH_TOKEN
        self.timeout = (
            connect_timeout if connect_timeout is not None else settings.MESSAGING_SMS_CONNECT_TIMEOUT,
            read_timeout if read_timeout is not None else settings.MESSAGING_SMS_READ_TIMEOUT,
        )
        self.max_attempts = max(1, max_attempts or settings.MESSAGING_SMS_MAX_ATTEMPTS)
        self.backoff_seconds = (
            backoff_seconds if backoff_seconds is not None else settings.MESSAGING_SMS_BACKOFF_SECONDS
        )
        self.backoff_max_seconds = (
            backoff_max_seconds
            if backoff_max_seconds is not None
            else settings.MESSAGING_SMS_BACKOFF_MAX_SECONDS
        )
        self.status_callback_url = (
            status_callback_url
            if status_callback_url is not None
            else settings.MESSAGING_SMS_STATUS_CALLBACK_URL
        )
        self.idempotency_header = (
            idempotency_header
            if idempotency_header is not None
            else settings.MESSAGING_SMS_IDEMPOTENCY_HEADER
        )
        self.supports_idempotency_key = bool(self.idempotency_header)
        self.session = session or requests.Session()
        self.session.trust_env = False  # a proxy from the environment must not reroute messages

    @property
    def messages_url(self) -> str:
        return f"{self.base_url}/2010-04-01/Accounts/{self.account_sid}/Messages.json"

    def send(self, sms: OutboundSms) -> str:
        form = {"To": sms.to, "From": sms.from_number, "Body": sms.body}
        if self.status_callback_url:
            form["StatusCallback"] = self.status_callback_url
        headers = {}
        if self.idempotency_header and sms.idempotency_key:
            headers[self.idempotency_header] = sms.idempotency_key
        last_error = ""
        for attempt in range(1, self.max_attempts + 1):
            try:
                return self._post(form, headers)
            except _Retryable as error:
                last_error = str(error)
                logger.warning("SMS provider attempt %d/%d failed: %s", attempt, self.max_attempts, error)
            if attempt < self.max_attempts:
                time.sleep(
                    capped_backoff(attempt=attempt, base=self.backoff_seconds, cap=self.backoff_max_seconds)
                )
        raise GatewayError(f"gave up after {self.max_attempts} attempts: {last_error}")

    def _post(self, form: dict[str, str], headers: dict[str, str]) -> str:
        try:
            response = self.session.post(
                self.messages_url,
                data=form,
                headers=headers,
                auth=(self.account_sid, self.auth_token),
                timeout=self.timeout,
            )
        except (requests.ConnectionError, requests.Timeout) as error:
            raise _Retryable(f"{type(error).__name__}: {error}") from error
        except requests.RequestException as error:
            raise GatewayError(f"{type(error).__name__}: {error}") from error
        if response.status_code >= 500:
            raise _Retryable(f"HTTP {response.status_code}: {response.text[:200]}")
        if response.status_code >= 400:
            raise GatewayError(f"HTTP {response.status_code}: {response.text[:500]}")
        try:
            sid = response.json()["sid"]
        except (ValueError, KeyError, TypeError) as error:
            raise GatewayError(f"unreadable provider answer: {response.text[:200]}") from error
        if not isinstance(sid, str) or not sid:
            raise GatewayError(f"provider answer without a message id: {response.text[:200]}")
        return sid


def get_gateway() -> SmsGateway:
    gateway_class = import_string(settings.MESSAGING_SMS_BACKEND)
    gateway: SmsGateway = gateway_class()
    return gateway
