"""The shape of a probe's answer: the IETF health-check response format.

``application/health+json`` (draft-inadarei-api-health-check): an overall ``status``
(pass, warn, fail) and ``checks`` keyed ``component:measurement``, each a list of objects with
``status``, ``observedValue``, ``observedUnit``, ``time`` and optionally ``componentId``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from health.exceptions import Status

CONTENT_TYPE = "application/health+json"


@dataclass(frozen=True)
class Observation:
    value: float | int | bool | str | None
    unit: str = ""


@dataclass(frozen=True)
class CheckResult:
    """One measurement of one component.

    ``critical`` decides what a failure does to the whole probe: a critical failure fails it,
    a non-critical one (a replica, one lock node, the Celery workers) only makes it ``warn``.
    """

    key: str
    status: Status
    observed: Observation | None = None
    component_id: str = ""
    output: str = ""
    critical: bool = True
    time: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def effective_status(self) -> Status:
        if self.status is Status.FAIL and not self.critical:
            return Status.WARN
        return self.status

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self.component_id:
            body["componentId"] = self.component_id
        body["status"] = self.status.value
        if self.observed is not None:
            body["observedValue"] = self.observed.value
            if self.observed.unit:
                body["observedUnit"] = self.observed.unit
        if self.output:
            body["output"] = self.output
        body["time"] = self.time.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return body


@dataclass(frozen=True)
class Report:
    results: Sequence[CheckResult] = ()
    service_id: str = ""
    description: str = ""

    @property
    def status(self) -> Status:
        worst = Status.PASS
        for result in self.results:
            if result.effective_status.severity > worst.severity:
                worst = result.effective_status
        return worst

    @property
    def http_status(self) -> int:
        return 503 if self.status is Status.FAIL else 200

    def find(self, key: str, component_id: str = "") -> CheckResult | None:
        for result in self.results:
            if result.key == key and (not component_id or result.component_id == component_id):
                return result
        return None

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status.value}
        if self.service_id:
            body["serviceId"] = self.service_id
        if self.description:
            body["description"] = self.description
        if self.results:
            checks: dict[str, list[dict[str, Any]]] = {}
            for result in self.results:
                checks.setdefault(result.key, []).append(result.as_json())
            body["checks"] = checks
        return body


def encode(report: Report) -> tuple[int, list[tuple[str, str]], bytes]:
    """HTTP status, headers and body of a probe's answer: one rendering for every server."""
    body = json.dumps(report.as_json()).encode()
    return report.http_status, [("Content-Type", CONTENT_TYPE), ("Cache-Control", "no-store")], body
