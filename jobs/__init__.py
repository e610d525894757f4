"""Celery-beat jobs wrapped in locks, so each tick runs exactly once across servers.

A generic framework that knows no app (import-linter checks it never imports ``messaging``):

- ``jobs.schedules``: ticks (epoch-aligned slots) and the beat scheduler that stamps them;
- ``jobs.context``: ``Job`` and ``JobContext`` (``ctx.fenced()``: one batch behind the lock's fence);
- ``jobs.services``: ``job_execute``, the one code path of every delivery (lock, ledger,
  catch-up, retries); ``jobs.selectors``: reads of the ledger (``JobRun``);
- ``jobs.registry``: ``@job(name="messages-sweep")``, which turns a body into the Celery task
  beat sends (``jobs.messages_sweep``, every ``JOBS_MESSAGES_SWEEP_INTERVAL_SECONDS``).

An app declares its jobs with ``@job`` in a module its ``AppConfig.ready()`` imports (messaging:
``messaging/jobs.py``); beat's schedule is in ``config/settings/components/jobs.py``.
Design: docs/adr/0008-exactly-once-jobs.md.
"""
