"""Settings for the ``replicas`` app (read/write splitting). Every value comes from the environment.

See ``replicas/__init__.py`` for what each one does and docs/adr/0004-read-replicas.md for why.
"""

import environ

env = environ.Env()

# Aliases in DATABASES that stream from ``default``; reads are spread over the healthy ones.
REPLICA_DATABASES = env.list("REPLICA_DATABASES", default=["replica"])
# A replica further behind than this (measured from WAL positions) gets no reads.
REPLICA_MAX_LAG_MS = env.int("REPLICA_MAX_LAG_MS", default=100)
# How often each process re-measures lag (in a background thread, never per query).
REPLICA_LAG_REFRESH_SECONDS = env.float("REPLICA_LAG_REFRESH_SECONDS", default=1.0)
# Connect timeout towards replicas; libpq/psycopg never wait less than 2 s, refused connects fail at once.
REPLICA_CONNECT_TIMEOUT_SECONDS = env.int("REPLICA_CONNECT_TIMEOUT_SECONDS", default=2)
# After a write, a user's reads must see it: for this long they go to a replica only if the
# replica has replayed the primary's WAL position recorded after the write.
REPLICA_READ_YOUR_WRITES_SECONDS = env.float("REPLICA_READ_YOUR_WRITES_SECONDS", default=5.0)
REPLICA_LSN_COOKIE_NAME = env.str("REPLICA_LSN_COOKIE_NAME", default="replica_lsn")
# Diagnostic endpoints under /replicas/debug/ (write a row, read it back, say which server
# answered) and the benchmark's primary-only header. Off unless set (the local cluster and the
# test settings set it); never tied to DEBUG, never on in production.
REPLICAS_DEBUG_ENDPOINTS = env.bool("REPLICAS_DEBUG_ENDPOINTS", default=False)

# Reads to healthy, caught-up replicas; writes, migrations and transactions on the primary.
DATABASE_ROUTERS = ["replicas.routers.ReplicaRouter"]
