"""Severity of a failed check, carried by the exception a check raises.

A check returns what it observed, or raises one of these. The message is a fixed sentence
written here ("timed out", "unreachable"), never the driver's exception text, because it
is shown to whoever may read the probe.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from health.report import Observation


class Status(StrEnum):
    """The IETF health-check statuses, in order of severity."""

    PASS = "pass"  # noqa: S105 (a status, not a password)
    WARN = "warn"
    FAIL = "fail"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {Status.PASS: 0, Status.WARN: 1, Status.FAIL: 2}


class HealthProblem(Exception):
    """A check found its dependency unhealthy; ``status`` says how badly."""

    status = Status.FAIL

    def __init__(self, output: str, *, observed: Observation | None = None) -> None:
        super().__init__(output)
        self.output = output
        self.observed = observed


class ServiceWarning(HealthProblem):
    """Degraded but still able to serve (one lock node of three down, a lagging replica)."""

    status = Status.WARN


class ServiceUnavailable(HealthProblem):
    """Not able to serve through this dependency."""

    status = Status.FAIL
