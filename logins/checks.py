"""``manage.py check --deploy``: a deployment whose admin takes a password alone is warned."""

from __future__ import annotations

from typing import Any

from django.core.checks import Tags, Warning, register

from logins.admin_site import two_factor_required


@register(Tags.security, deploy=True)
def admin_two_factor(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    if two_factor_required():
        return []
    return [
        Warning(
            "The admin takes a password alone: ADMIN_TWO_FACTOR is off.",
            hint="Production settings force it on; staff then need a TOTP device (manage.py admin_totp).",
            id="logins.W001",
        )
    ]
