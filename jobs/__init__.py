"""Celery-beat jobs wrapped in locks, so each tick runs exactly once across servers.

A generic framework that knows no app (import-linter checks it never imports ``messaging``):

- ``jobs.schedules``: ticks (epoch-aligned slots) and the beat scheduler that stamps them;
- ``jobs.context``: ``Job`` and ``JobContext`` (``ctx.fenced()``: one batch behind the lock's fence);
- ``jobs.services``: ``job_execute``, the one code path of every delivery (lock, ledger,
  catch-up, retries); ``jobs.selectors``: reads of the ledger (``JobRun``);
- ``jobs.registry``: ``@job(name="messages-sweep", interval="MESSAGING_SWEEP_INTERVAL_SECONDS")``,
  which turns a body into the Celery task beat sends (``messaging.messages_sweep``: named in the
  declaring app's namespace) and gives beat's schedule its entry (``jobs.schedules.BEAT_SCHEDULE``).

An app declares its jobs with ``@job`` in a module its ``AppConfig.ready()`` imports (messaging:
``messaging/jobs.py``); ``CELERY_BEAT_SCHEDULE`` is built from those declarations. Every run
and skipped delivery is counted once, in ``app_job_runs_total`` (config/metrics.py).
Design: docs/adr/0008-exactly-once-jobs.md.
"""
