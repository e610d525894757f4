"""The app's settings, read once and re-read when a test overrides them."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver


@dataclass(frozen=True)
class ReplicaSettings:
    replicas: tuple[str, ...]
    max_lag_ms: int
    refresh_seconds: float
    connect_timeout_seconds: int
    read_your_writes_seconds: float
    cookie_name: str


@functools.cache
def replica_settings() -> ReplicaSettings:
    return ReplicaSettings(
        replicas=tuple(getattr(settings, "REPLICA_DATABASES", ())),
        max_lag_ms=settings.REPLICA_MAX_LAG_MS,
        refresh_seconds=settings.REPLICA_LAG_REFRESH_SECONDS,
        connect_timeout_seconds=settings.REPLICA_CONNECT_TIMEOUT_SECONDS,
        read_your_writes_seconds=settings.REPLICA_READ_YOUR_WRITES_SECONDS,
        cookie_name=settings.REPLICA_LSN_COOKIE_NAME,
    )


@receiver(setting_changed)
def _reload(*, setting: str, **_: Any) -> None:
    if setting.startswith("REPLICA") or setting == "DATABASES":
        replica_settings.cache_clear()


def debug_endpoints_enabled() -> bool:
    """``REPLICAS_DEBUG_ENDPOINTS`` alone: DEBUG never switches test-only endpoints on."""
    return bool(getattr(settings, "REPLICAS_DEBUG_ENDPOINTS", False))
