"""Settings for the ``jobs`` app: the Celery beat schedule. Every value comes from the environment."""

import environ

env = environ.Env()

# One plain dict; the jobs issue fills it. Beat runs on every server, so every entry must be
# a job that takes its lock (see jobs/).
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {}
