"""The environment of a benchmark that runs the project's Django in its own process.

Against the running cluster (``config.settings.local`` reads its ports from ``.cluster/``), with
a metrics folder of its own (prometheus-client's multiprocess mode needs one) and a server name
that tells its log lines and ledger rows from the cluster's.
"""

from __future__ import annotations

import os
import tempfile


def django_environment(name: str) -> None:
    """Set what is not set already; Django itself is set up by the caller's first import of it."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix=f"{name}-metrics-"))
    os.environ.setdefault("APP_SERVER_NAME", name)
