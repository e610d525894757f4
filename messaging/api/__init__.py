"""The JSON API (django-ninja, see docs/adr/0002-api-framework.md): thin views over services.

Clients log in for a bearer token; every ``/api/`` view serves only the token holder's church.
Errors are JSON ``{"detail": ..., "field": ...}`` naming the input to fix; no client input
gets a 500.

One ``NinjaAPI`` with a router per part of messaging (``tokens``: ``/auth/``, ``contacts``,
``sending``: ``/api/messages``, ``recurring``, ``inbound``: ``/webhooks/sms/``); the schemas
are ``schemas``, who may call is ``auth``, and the error answers are ``errors``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from ninja import NinjaAPI

from messaging.api import contacts, inbound, recurring, sending, tokens
from messaging.api.auth import BearerToken
from messaging.api.errors import errors_install


class MessagingApi(NinjaAPI):
    def get_openapi_operation_id(self, operation: Any) -> str:
        # The ids the schema published when one module held every view: clients generated from
        # it keep their method names.
        return f"messaging_api_{operation.view_func.__name__}"


api = MessagingApi(
    title="Church messaging API",
    version="1",
    description="Contacts, messages and recurring messages of one church; SMS provider callbacks.",
    urls_namespace="messaging-api",
    # The schema and its docs page describe every endpoint to whoever asks: served only where
    # MESSAGING_API_DOCS turns them on (local development), a 404 elsewhere.
    openapi_url="/api/openapi.json" if settings.MESSAGING_API_DOCS else None,
    docs_url="/api/docs",
    auth=BearerToken(),
)
errors_install(api)
# In the order the schema lists them.
for part in (tokens, contacts, sending, recurring, inbound):
    api.add_router("", part.router)
