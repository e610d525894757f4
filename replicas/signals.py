"""Hooks: write detection on every new primary connection; the read position carried by Celery tasks.

A task enqueued by a request (or another task) that wrote carries the primary's WAL position in
its message headers, so the task's reads see those writes; inside the task, reads go to the
primary once the task itself has written.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from celery.signals import before_task_publish, task_postrun, task_prerun
from django.db.backends.signals import connection_created
from django.dispatch import receiver

from replicas.conf import replica_settings
from replicas.context import RoutingState, RoutingTokens, current_state, enter_unit, exit_unit
from replicas.lsn import format_lsn, parse_lsn
from replicas.writes import install_write_detection, primary_lsn_after_writes

TASK_HEADER = "replica_min_lsn"
# The task must read from the primary (enqueued inside a transaction: no position covers it yet).
PRIMARY_ONLY = "primary"

_task_tokens: dict[str, RoutingTokens] = {}
_task_tokens_lock = threading.Lock()


@receiver(connection_created)
def _detect_writes(sender: Any, connection: Any, **_: Any) -> None:
    install_write_detection(connection)


def task_read_position(state: RoutingState) -> str | None:
    """What a task enqueued now must see: the position after our writes, or the one we had to see."""
    conf = replica_settings()
    if state.wrote_recently(conf.read_your_writes_seconds):
        lsn = primary_lsn_after_writes(state)
        return PRIMARY_ONLY if lsn is None else format_lsn(lsn)
    min_lsn = state.needs_lsn(time.time())
    return None if min_lsn is None else format_lsn(min_lsn)


@before_task_publish.connect
def _attach_read_position(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if headers is None:
        return
    position = task_read_position(current_state())
    if position is not None:
        headers[TASK_HEADER] = position


@task_prerun.connect
def _enter_task_unit(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    if task_id is None or task is None:
        return
    position = getattr(task.request, TASK_HEADER, None)
    if position is None and getattr(task.request, "is_eager", False):
        position = task_read_position(current_state())  # run in place: inherit the caller's
    min_lsn = None
    if position and position != PRIMARY_ONLY:
        try:
            min_lsn = parse_lsn(position)
        except ValueError:
            position = PRIMARY_ONLY
    state, tokens = enter_unit(min_lsn=min_lsn, window_seconds=replica_settings().read_your_writes_seconds)
    if position == PRIMARY_ONLY:
        state.wrote_at = time.monotonic()
    with _task_tokens_lock:
        _task_tokens[task_id] = tokens


@task_postrun.connect
def _exit_task_unit(task_id: str | None = None, **_: Any) -> None:
    with _task_tokens_lock:
        tokens = _task_tokens.pop(task_id or "", None)
    if tokens is not None:
        exit_unit(tokens)
