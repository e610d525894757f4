"""Provider callbacks are signed over a timestamp and the raw body, so a captured one cannot be replayed.

The provider sends two headers with every callback:

- ``X-Signature-Timestamp``: the Unix time (whole seconds) at which it signed;
- ``X-Signature``: ``sha256=`` and the hex HMAC-SHA256, under the shared secret, of the
  timestamp, a dot, and the exact body bytes (``f"{timestamp}.".encode() + body``).

A callback is refused (403) when the signature does not match under the current secret
(``MESSAGING_WEBHOOK_SECRET``) or, during a rotation, the previous one
(``MESSAGING_WEBHOOK_SECRET_PREVIOUS``); when its timestamp is more than
``MESSAGING_WEBHOOK_MAX_SKEW_SECONDS`` (300) away from our clock; or when the same signature
was already accepted (a replay inside the window). The body is verified before it is parsed.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings

SIGNATURE_HEADER = "X-Signature"
TIMESTAMP_HEADER = "X-Signature-Timestamp"
SIGNATURE_PREFIX = "sha256="
# Longer than any real timestamp; bounds what a client can make us parse.
_MAX_TIMESTAMP_DIGITS = 12


@dataclass(frozen=True)
class Verdict:
    """Why a callback was refused (``reason``), or ``ok`` with the signature that was accepted."""

    ok: bool
    reason: str
    field: str
    signature: str = ""


def webhook_secrets() -> list[str]:
    """The secrets a callback may be signed with: the current one, then the previous one if set."""
    candidates = [
        settings.MESSAGING_WEBHOOK_SECRET,
        getattr(settings, "MESSAGING_WEBHOOK_SECRET_PREVIOUS", ""),
    ]
    return [secret for secret in candidates if secret]


def webhook_signature(*, body: bytes, timestamp: int | str, secret: str | None = None) -> str:
    """The hex signature of ``timestamp`` and ``body`` (what the provider puts after ``sha256=``)."""
    key = (secret if secret is not None else settings.MESSAGING_WEBHOOK_SECRET).encode()
    return hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def webhook_headers(
    *, body: bytes, secret: str | None = None, timestamp: int | None = None
) -> dict[str, str]:
    """The two headers a provider sends with ``body`` (the tests and the load test sign with this)."""
    stamp = int(time.time()) if timestamp is None else timestamp
    return {
        TIMESTAMP_HEADER: str(stamp),
        SIGNATURE_HEADER: SIGNATURE_PREFIX + webhook_signature(body=body, timestamp=stamp, secret=secret),
    }


def _is_unix_seconds(stamp: str) -> bool:
    # str.isdigit() alone also takes "\xb2" (which int() refuses) and other scripts' digits
    # (which int() reads): only ASCII digits are a timestamp.
    return 0 < len(stamp) <= _MAX_TIMESTAMP_DIGITS and stamp.isascii() and stamp.isdigit()


def webhook_verify(
    *,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    secrets: Iterable[str] | None = None,
    now: float | None = None,
    max_skew: float | None = None,
) -> Verdict:
    """Check a callback's timestamp and signature; replays are the caller's (they need storage)."""
    stamp = (timestamp or "").strip()
    if not _is_unix_seconds(stamp):
        detail = f"{TIMESTAMP_HEADER} is missing or not whole Unix seconds in ASCII digits"
        return Verdict(False, detail, TIMESTAMP_HEADER)
    skew = settings.MESSAGING_WEBHOOK_MAX_SKEW_SECONDS if max_skew is None else max_skew
    current = time.time() if now is None else now
    if abs(current - int(stamp)) > skew:
        detail = f"{TIMESTAMP_HEADER} is more than {skew:g} s from now"
        return Verdict(False, detail, TIMESTAMP_HEADER)
    presented = (signature or "").strip().lower().removeprefix(SIGNATURE_PREFIX)
    if not presented:
        return Verdict(False, "missing or wrong signature", SIGNATURE_HEADER)
    keys = webhook_secrets() if secrets is None else [secret for secret in secrets if secret]
    for secret in keys:
        expected = webhook_signature(body=body, timestamp=stamp, secret=secret)
        if hmac.compare_digest(presented.encode(), expected.encode()):
            return Verdict(True, "", "", signature=expected)
    return Verdict(False, "missing or wrong signature", SIGNATURE_HEADER)
