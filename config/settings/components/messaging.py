"""Settings for the ``messaging`` app. Every value comes from the environment."""

import environ

env = environ.Env()
