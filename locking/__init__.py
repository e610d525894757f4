"""Distributed locks over a quorum of Redis nodes, with renewal, fencing tokens and an audit.

The public API is ``locking.services`` (``acquire_job_lock``, ``release_job_lock``,
``with_job_lock``, ``is_job_lock_held``, ``get_active_job_locks``, ``force_release_job_lock``).
Inside, one direction: ``names`` (lock names, owner ids, TTL in ms) and ``quorum`` (the Redis
nodes) at the bottom, ``fencing`` (PostgreSQL tokens) and ``audit`` (the ``LockGrant`` rows)
above them, ``selectors`` (reads) and ``services`` (``JobLock``) on top.
Design: docs/adr/0003-distributed-locks.md.
"""
