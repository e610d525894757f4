"""Settings for the ``replicas`` app. Every value comes from the environment."""

import environ

env = environ.Env()
