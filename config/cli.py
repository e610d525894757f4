"""Who the operator is, for the audit rows the management commands write."""

from __future__ import annotations

import getpass
import os


def default_operator() -> str:
    """The operator an audit records when ``--by`` is not given.

    ``getpass.getuser()`` reads LOGNAME/USER, then the passwd entry of the uid; a container
    running as an arbitrary uid (Kubernetes ``runAsUser``, OpenShift) may have neither, and
    ``getuser`` then raises. Fall back to the uid, which still tells operators apart.
    """
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid-{os.getuid()}"
