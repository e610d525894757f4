"""Provider callbacks are signed: ``X-Signature`` is the hex HMAC-SHA256 of the raw body.

The secret (``MESSAGING_WEBHOOK_SECRET``) is shared with the provider. The signature covers the
exact bytes received, so the body is verified before it is parsed.
"""

import hashlib
import hmac

from django.conf import settings

SIGNATURE_HEADER = "X-Signature"


def webhook_signature(*, body: bytes, secret: str | None = None) -> str:
    key = (secret if secret is not None else settings.MESSAGING_WEBHOOK_SECRET).encode()
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def webhook_signature_valid(*, body: bytes, signature: str | None, secret: str | None = None) -> bool:
    if not signature:
        return False
    presented = signature.strip().removeprefix("sha256=").lower()
    return hmac.compare_digest(presented, webhook_signature(body=body, secret=secret))
