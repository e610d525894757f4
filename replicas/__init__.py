"""Read/write splitting: writes to the primary, reads to healthy, caught-up replicas.

Where a read goes (``replicas.routers.ReplicaRouter``, in ``DATABASE_ROUTERS``):

- writes and migrations: always ``default`` (the primary, through PgBouncer);
- reads inside ``transaction.atomic()`` on the primary: the primary (a transaction sees its own
  writes);
- reads inside ``with use_primary_db:`` / ``@use_primary_db`` (nests correctly): the primary;
- reads after this request or Celery task wrote: the primary, for the rest of it;
- reads by a principal whose recent write a replica has not replayed yet: the primary. The WAL
  position after a write is kept in Redis under the hash of the request's ``Authorization``
  header or session cookie (``replicas.positions``), in the signed ``replica_lsn`` cookie, in
  the signed, timestamped ``X-Replica-LSN`` response header (a client may send it back unchanged
  as ``X-Replica-Min-LSN``; any other value is ignored and counted),
  and in the task header ``replica_min_lsn``;
- every other read: a replica from ``REPLICA_DATABASES`` whose lag (staleness as a reader sees
  it, measured once a second per process by ``replicas.monitor``) is at most
  ``REPLICA_MAX_LAG_MS`` (100); with none healthy, the primary (logged once per outage, counted
  in ``replicas.selectors.routing_counts()``). Health checks, metrics and the ``replicas``
  command report that same measurement (``replicas.selectors.replica_states()``).

Force the primary for a block of code::

    from replicas import use_primary_db

    with use_primary_db:
        balance = Account.objects.get(pk=pk).balance

Code that must read or write the primary itself (locks, the job ledger) names it
``PRIMARY_DB_ALIAS`` (``from config.databases import PRIMARY_DB_ALIAS``), the one name of that
alias.

Settings (``config/settings/components/replicas.py``): ``REPLICA_DATABASES``,
``REPLICA_MAX_LAG_MS``, ``REPLICA_LAG_REFRESH_SECONDS``, ``REPLICA_CONNECT_TIMEOUT_SECONDS``,
``REPLICA_READ_YOUR_WRITES_SECONDS``, ``REPLICA_LSN_COOKIE_NAME``, ``REPLICAS_DEBUG_ENDPOINTS``.
``python manage.py replicas status`` prints each replica's state, lag and WAL positions.
Why it is built this way, and how it fails: docs/adr/0004-read-replicas.md.
"""

from replicas.context import use_primary_db

__all__ = ["use_primary_db"]
