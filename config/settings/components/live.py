"""Settings for live updates (``live/``): the Socket.IO servers and the processes that publish to them.

Every value comes from the environment; ADR 0013 says why each default is what it is.
"""

import environ

from config.redis_urls import broker_redis_url

env = environ.Env()

# The Redis that carries events between processes and servers: the broker's node by default
# (pub/sub needs no database number; the channel name keeps deployments apart).
# Either way it carries the broker's ACL credentials (config/redis_urls.py).
LIVE_REDIS_URL = broker_redis_url(env, env("LIVE_REDIS_URL", default=None))
LIVE_CHANNEL = env("LIVE_CHANNEL", default="live")
# Publishing happens after the commit inside a request or task: bounded, never a hang.
LIVE_REDIS_TIMEOUT_SECONDS = env.float("LIVE_REDIS_TIMEOUT_SECONDS", default=1.0)
# Off: nothing is published (a deployment without Socket.IO servers).
LIVE_EVENTS_ENABLED = env.bool("LIVE_EVENTS_ENABLED", default=True)

# --- the Socket.IO server (manage.py live_server) ---------------------------------------
LIVE_BIND = env("LIVE_BIND", default="127.0.0.1:8001")
# Browser origins allowed to connect; empty means the same origin as the page's host.
LIVE_ALLOWED_ORIGINS = env.list("LIVE_ALLOWED_ORIGINS", default=[])
# The largest message a client may send (clients only send their auth payload).
LIVE_MAX_MESSAGE_BYTES = env.int("LIVE_MAX_MESSAGE_BYTES", default=16 * 1024)
# Socket.IO's heartbeat: a client silent for interval + timeout is dropped.
LIVE_PING_INTERVAL_SECONDS = env.float("LIVE_PING_INTERVAL_SECONDS", default=25.0)
LIVE_PING_TIMEOUT_SECONDS = env.float("LIVE_PING_TIMEOUT_SECONDS", default=20.0)
# On SIGTERM: stop accepting at once, tell clients to reconnect elsewhere, and close their
# connections spread over this many seconds (a herd of reconnects would land at once otherwise).
LIVE_DRAIN_SECONDS = env.float("LIVE_DRAIN_SECONDS", default=10.0)
# How often each connection's token is checked again: a revoked or expired token, or a staff
# member moved to another church, is disconnected within this time.
LIVE_TOKEN_RECHECK_SECONDS = env.float("LIVE_TOKEN_RECHECK_SECONDS", default=60.0)
