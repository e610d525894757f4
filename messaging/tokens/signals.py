"""Changes that can end a bearer token's life publish a token revocation (messaging/tokens/cache.py).

Saved or deleted through the ORM (the admin, ``user.save()``, ``queryset.delete()``), a user,
staff member or church, or a deleted token, drops every server's cached tokens once the change
commits. A new password, a deactivation or a move to another church also deletes every token
of that user (``services.api_tokens_revoke_all``), in the same transaction as the change: the
old password or the old church's access does not live on in a token. A bulk
``QuerySet.update()`` sends no signal: after one that changes passwords, deactivates users or
moves staff, call ``api_tokens_revoke_all`` for each user it touched.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models.signals import post_delete, post_save, pre_save

from messaging.models import ApiToken, Church, StaffMember
from messaging.tokens import selectors, services
from messaging.tokens.cache import token_cache

# Set on an instance between pre_save and post_save when its save ends its user's tokens.
_ENDS_TOKENS = "_messaging_tokens_end"


def _only_last_login(update_fields: Any) -> bool:
    # Every login saves this; it changes nobody's access.
    return update_fields is not None and set(update_fields) <= {"last_login"}


def _user_saving(*, instance: Any, using: str, update_fields: Any = None, **_: Any) -> None:
    if not _only_last_login(update_fields):
        setattr(instance, _ENDS_TOKENS, selectors.user_change_ends_tokens(user=instance, using=using))


def _staff_saving(*, instance: StaffMember, using: str, **_: Any) -> None:
    setattr(instance, _ENDS_TOKENS, selectors.staff_change_ends_tokens(staff=instance, using=using))


def _saved(*, instance: Any, created: bool, using: str, update_fields: Any = None, **_: Any) -> None:
    if created or _only_last_login(update_fields):
        return  # a new row ends no token
    if getattr(instance, _ENDS_TOKENS, False):
        setattr(instance, _ENDS_TOKENS, False)
        user_id = instance.user_id if isinstance(instance, StaffMember) else instance.pk
        services.api_tokens_revoke_all(user_id=user_id, using=using)
    token_cache.bump_on_commit(using=using)


def _deleted(*, using: str, **_: Any) -> None:
    token_cache.bump_on_commit(using=using)


def connect() -> None:
    user_model = get_user_model()
    pre_save.connect(_user_saving, sender=user_model, dispatch_uid="token-revocation-presave-user")
    pre_save.connect(_staff_saving, sender=StaffMember, dispatch_uid="token-revocation-presave-staff")
    for model in (user_model, StaffMember, Church):
        post_save.connect(_saved, sender=model, dispatch_uid=f"token-revocation-save-{model.__name__}")
        post_delete.connect(_deleted, sender=model, dispatch_uid=f"token-revocation-delete-{model.__name__}")
    post_delete.connect(_deleted, sender=ApiToken, dispatch_uid="token-revocation-delete-ApiToken")
