"""Settings for the ``locking`` app. Every value comes from the environment.

The node list itself (``LOCK_REDIS_URLS``) lives in ``base.py`` next to the other Redis URLs.
"""

import environ
from django.core.exceptions import ImproperlyConfigured

env = environ.Env()

# Every key the lock service writes starts with this, so several deployments (or the test
# suite) can share nodes, and listing can SCAN a pattern instead of touching other keys.
LOCK_KEY_PREFIX = env("LOCK_KEY_PREFIX", default="lock:")

# Every call to a lock node is bounded by these (seconds). They must stay far below the
# shortest TTL in use: a hung node costs at most one of them per call, never one per node.
LOCK_SOCKET_CONNECT_TIMEOUT = env.float("LOCK_SOCKET_CONNECT_TIMEOUT", default=0.2)
LOCK_SOCKET_TIMEOUT = env.float("LOCK_SOCKET_TIMEOUT", default=0.2)

# A node that failed is skipped for this long before it is tried again, so a dead node does
# not add a timeout to every call while it is down.
LOCK_NODE_RETRY_INTERVAL = env.float("LOCK_NODE_RETRY_INTERVAL", default=1.0)

# Redlock's clock-drift allowance: validity = TTL - elapsed - (TTL * factor + 2 ms).
LOCK_CLOCK_DRIFT_FACTOR = env.float("LOCK_CLOCK_DRIFT_FACTOR", default=0.01)

# Default TTL in seconds when the caller does not pass one; renewal runs at a third of it.
LOCK_DEFAULT_TTL = env.float("LOCK_DEFAULT_TTL", default=60.0)

LOCK_NAME_MAX_LENGTH = env.int("LOCK_NAME_MAX_LENGTH", default=200)

# Callers racing for one lock at the same instant (every beat sends each tick at once) can split
# the nodes' votes so that none has a majority. Each gives its partial grants back and asks
# again, at most this many times, after a jittered pause of DELAY x attempt x (0.5-1.0) seconds,
# and only within the first third of the TTL.
LOCK_SPLIT_VOTE_RETRIES = env.int("LOCK_SPLIT_VOTE_RETRIES", default=3)
LOCK_SPLIT_VOTE_DELAY = env.float("LOCK_SPLIT_VOTE_DELAY", default=0.05)
if LOCK_SPLIT_VOTE_RETRIES < 0 or LOCK_SPLIT_VOTE_RETRIES > 20:
    raise ImproperlyConfigured(f"LOCK_SPLIT_VOTE_RETRIES must be 0-20, got {LOCK_SPLIT_VOTE_RETRIES}")
if not 0 < LOCK_SPLIT_VOTE_DELAY <= 5:
    raise ImproperlyConfigured(
        f"LOCK_SPLIT_VOTE_DELAY must be above 0 and at most 5 seconds, got {LOCK_SPLIT_VOTE_DELAY}"
    )
