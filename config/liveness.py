"""Liveness for the processes that serve no HTTP: a file their own loop touches.

A Kubernetes liveness probe must not depend on a dependency (an outage would restart every pod),
so the Celery worker and beat prove only that their loop still turns: the worker's timer (it
runs in the worker's event loop) and beat's scheduler tick touch ``CELERY_LIVENESS_FILE``; the
probe checks the file's age (deploy/k8s). Unset (the local cluster, the VMs), nothing is written.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from celery import bootsteps

LIVENESS_FILE_VARIABLE = "CELERY_LIVENESS_FILE"
WORKER_TOUCH_SECONDS = 10.0


def touch_liveness_file() -> None:
    path = os.environ.get(LIVENESS_FILE_VARIABLE)
    if path:
        Path(path).touch()


class WorkerLivenessFile(bootsteps.StartStopStep):
    """Touch the liveness file from the worker's timer every ``WORKER_TOUCH_SECONDS``."""

    requires = ("celery.worker.components:Timer",)

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.tref: Any = None

    def include_if(self, worker: Any) -> bool:
        return bool(os.environ.get(LIVENESS_FILE_VARIABLE))

    def start(self, worker: Any) -> None:
        touch_liveness_file()
        self.tref = worker.timer.call_repeatedly(WORKER_TOUCH_SECONDS, touch_liveness_file, priority=10)

    def stop(self, worker: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
