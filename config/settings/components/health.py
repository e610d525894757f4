"""Settings for the ``health`` app. Every value comes from the environment."""

import environ

env = environ.Env()
