"""Drain state, shared by the gunicorn master and its workers.

On SIGTERM the master does not stop at once (gunicorn's own handling closes the listeners and
stops the workers immediately). It sets a flag in memory shared with the workers, so
``/health`` and ``/health/ready`` answer 503 on every worker from the next request on, keeps
serving for ``HEALTH_DRAIN_SECONDS`` so the balancer sees the 503 and moves traffic away, and
only then runs gunicorn's normal graceful stop (listeners closed, in-flight requests finished
within ``graceful_timeout``).

The flag lives in an anonymous shared mapping created when this module is imported. The
gunicorn config imports it in the master before any worker is forked, so every worker maps the
same page. Outside gunicorn (tests, ``manage.py``) it is simply a private page that nobody sets.

This module must not import Django: the gunicorn master loads it before any settings exist.
"""

from __future__ import annotations

import mmap
import signal
import struct
import time
from typing import Any

DEFAULT_DRAIN_SECONDS = 15.0  # a balancer polling every 10 s sees at least one 503

_LAYOUT = struct.Struct("=B7xd")  # draining flag, wall-clock time the drain began
_STATE = mmap.mmap(-1, _LAYOUT.size)  # anonymous and MAP_SHARED: forked workers share it


def is_draining() -> bool:
    return bool(_STATE[0])


def draining_since() -> float | None:
    """Wall-clock time the drain began, or None when serving normally."""
    flag, started = _LAYOUT.unpack(_STATE[: _LAYOUT.size])
    return started if flag else None


def start_draining() -> None:
    _STATE[: _LAYOUT.size] = _LAYOUT.pack(1, time.time())


def stop_draining() -> None:
    """Back to serving; only tests need this (a real drain ends with the process)."""
    _STATE[: _LAYOUT.size] = _LAYOUT.pack(0, 0.0)


def install_in_arbiter(arbiter: Any, *, drain_seconds: float) -> None:
    """Make the gunicorn master drain on SIGTERM before its graceful stop.

    Called from the ``when_ready`` hook, after gunicorn installed its signal handlers. The
    master's loop dispatches a queued SIGTERM to ``handle_term``; ours starts the drain and
    returns, and the wrapped ``wait_for_signals`` hands SIGTERM back to it once the drain period
    is over, when it raises ``StopIteration`` as gunicorn's own handler does (a graceful stop).
    SIGINT and SIGQUIT keep their meaning: stop now.
    """
    wait_for_signals = arbiter.wait_for_signals
    deadline: list[float] = []

    def handle_term() -> None:
        if not deadline:
            start_draining()
            deadline.append(time.monotonic() + drain_seconds)
            arbiter.log.info("SIGTERM: draining for %gs, then stopping gracefully", drain_seconds)
        if time.monotonic() >= deadline[0]:
            arbiter.log.info("Drain period over: stopping gracefully")
            raise StopIteration

    def wait_for_signals_while_draining(timeout: float = 1.0) -> list[int]:
        if deadline:
            timeout = max(0.0, min(timeout, deadline[0] - time.monotonic()))
        signals: list[int] = wait_for_signals(timeout=timeout)
        if deadline and time.monotonic() >= deadline[0] and signal.SIGTERM not in signals:
            signals.append(signal.SIGTERM)
        return signals

    arbiter.handle_term = handle_term
    arbiter.wait_for_signals = wait_for_signals_while_draining
