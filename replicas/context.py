"""Routing state for one unit of work (an HTTP request, a Celery task), held in ContextVars.

A unit starts with a fresh state and puts the previous one back when it ends, so nothing one
request decided (a write, a forced primary) reaches the next request served by the same thread.
Code running outside any unit (a shell, a management command, a test body) uses the thread's
base state, where a write sends reads to the primary for ``REPLICA_READ_YOUR_WRITES_SECONDS``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class RoutingState:
    """What the router needs to know about the current unit of work."""

    # True inside a request or task; False for the thread's base state.
    unit: bool
    # The primary's WAL position this unit's reads must see (from the cookie, the hint header or
    # the task header), and until when (``time.time()``) that requirement holds.
    min_lsn: int | None = None
    min_lsn_until: float = 0.0
    window_seconds: float = 0.0
    # Fetches a position kept elsewhere (the principal's, in Redis) the first time one is needed,
    # so a request that never reads from a replica never asks.
    min_lsn_loader: Callable[[], int | None] | None = None
    # ``time.monotonic()`` of the last write seen on the primary connection.
    wrote_at: float | None = None
    # The primary's WAL position read after this unit's writes; stale once it writes again.
    written_lsn: int | None = None
    lsn_dirty: bool = False
    # Replicas re-measured in this unit and still behind ``min_lsn``: not asked again.
    replicas_behind: set[str] = field(default_factory=set)
    # Replicas that served reads in this unit (for the safe-method retry on a replica failure).
    replicas_read: set[str] = field(default_factory=set)

    def needs_lsn(self, now: float) -> int | None:
        """The WAL position reads must have reached, if the requirement still holds."""
        if self.min_lsn_loader is not None:
            loader, self.min_lsn_loader = self.min_lsn_loader, None
            loaded = loader()
            if loaded is not None and (self.needs_lsn(now) or -1) < loaded:
                self.min_lsn, self.min_lsn_until = loaded, now + self.window_seconds
        if self.min_lsn is not None and now < self.min_lsn_until:
            return self.min_lsn
        return None

    def wrote_recently(self, window_seconds: float) -> bool:
        """A unit that wrote keeps reading from the primary; the base state only for the window."""
        if self.wrote_at is None:
            return False
        return self.unit or time.monotonic() - self.wrote_at < window_seconds


_state: ContextVar[RoutingState | None] = ContextVar("replicas_routing_state", default=None)
_forced_primary: ContextVar[int] = ContextVar("replicas_forced_primary", default=0)


def current_state() -> RoutingState:
    """The current unit's state, or the thread's base state (made on first use)."""
    state = _state.get()
    if state is None:
        state = RoutingState(unit=False)
        _state.set(state)
    return state


def primary_is_forced() -> bool:
    return _forced_primary.get() > 0


def note_write() -> None:
    """A statement that changes data ran on the primary connection."""
    state = current_state()
    state.wrote_at = time.monotonic()
    state.lsn_dirty = True


RoutingTokens = tuple[Token[RoutingState | None], Token[int]]


def enter_unit(*, min_lsn: int | None, window_seconds: float) -> tuple[RoutingState, RoutingTokens]:
    """Start a unit of work with a fresh state; pair with :func:`exit_unit` (signal handlers)."""
    state = RoutingState(
        unit=True,
        min_lsn=min_lsn,
        min_lsn_until=time.time() + window_seconds if min_lsn is not None else 0.0,
        window_seconds=window_seconds,
    )
    return state, (_state.set(state), _forced_primary.set(0))


def exit_unit(tokens: RoutingTokens) -> None:
    state_token, forced_token = tokens
    _forced_primary.reset(forced_token)
    _state.reset(state_token)


@contextmanager
def unit_of_work(*, min_lsn: int | None = None, window_seconds: float = 0.0) -> Iterator[RoutingState]:
    """A request or task: fresh routing state inside, the previous state restored after."""
    state, tokens = enter_unit(min_lsn=min_lsn, window_seconds=window_seconds)
    try:
        yield state
    finally:
        exit_unit(tokens)


class UsePrimaryDB:
    """Send every read to the primary: ``with use_primary_db:``, ``with use_primary_db():`` or
    ``@use_primary_db``. Nests correctly (a depth counter, not a flag), so leaving an inner block
    never un-forces an outer one, and an exception cannot leave the context forced."""

    def __enter__(self) -> None:
        _forced_primary.set(_forced_primary.get() + 1)

    def __exit__(self, *exc_info: object) -> None:
        _forced_primary.set(_forced_primary.get() - 1)

    def __call__(self, func: Callable[P, R] | None = None) -> Any:
        if func is None:
            return self

        @wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with self:
                return func(*args, **kwargs)

        return wrapper


use_primary_db = UsePrimaryDB()
