"""Changes that can end a bearer token's life publish a token revocation (messaging/tokens/cache.py).

Saved or deleted through the ORM (the admin, ``user.save()``, ``queryset.delete()``), a user,
staff member or church, or a deleted token, drops every server's cached tokens once the change
commits. A bulk ``QuerySet.update()`` sends no signal: after one that deactivates users or
moves staff, call ``messaging.tokens.cache.token_cache.bump()``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models.signals import post_delete, post_save

from messaging.models import ApiToken, Church, StaffMember
from messaging.tokens.cache import token_cache


def _saved(*, created: bool, using: str, update_fields: Any = None, **_: Any) -> None:
    if created:
        return  # a new row ends no token
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return  # every admin login saves this; it changes nobody's access
    token_cache.bump_on_commit(using=using)


def _deleted(*, using: str, **_: Any) -> None:
    token_cache.bump_on_commit(using=using)


def connect() -> None:
    user_model = get_user_model()
    for model in (user_model, StaffMember, Church):
        post_save.connect(_saved, sender=model, dispatch_uid=f"token-revocation-save-{model.__name__}")
        post_delete.connect(_deleted, sender=model, dispatch_uid=f"token-revocation-delete-{model.__name__}")
    post_delete.connect(_deleted, sender=ApiToken, dispatch_uid="token-revocation-delete-ApiToken")
