"""Settings for the ``locking`` app. Every value comes from the environment."""

import environ

env = environ.Env()
