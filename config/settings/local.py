"""Local development settings (the default): talks to the loopback cluster from ``make up``.

The cluster writes the ports it actually uses to ``.cluster/cluster.env``; reading it here lets
``.venv/bin/python manage.py ...`` reach the running cluster with no extra environment.
Variables already set in the environment win.
"""

from pathlib import Path

import environ

environ.Env.read_env(Path(__file__).resolve().parent.parent.parent / ".cluster" / "cluster.env")

from config.settings.base import *  # noqa: E402,F403

DEBUG = env.bool("DJANGO_DEBUG", default=True)  # noqa: F405
