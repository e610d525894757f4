"""The PostgreSQL backend of every alias: django-prometheus's counters plus a bounded wait for a
database that is failing over (``replicas.backend.base``)."""
