"""Settings split by environment: ``local`` (default), ``test``, ``production``.

Every value comes from the environment with a safe local default; production has no
default for secrets and refuses to start without them.
"""
