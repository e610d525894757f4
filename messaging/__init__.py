"""The workload being scaled: churches, contacts, messages, the JSON API and webhooks.

One app label and one migration history (the models are ``messaging/models.py``), in parts that
each keep their writes in ``services.py`` and their reads in ``selectors.py``:

- ``contacts``: churches, staff members, contacts, phone numbers in E.164;
- ``sending``: queue outbound messages, claim and deliver each at most once, sweep what was left;
- ``recurring``: cron schedules in the church's time zone and their occurrences;
- ``inbound``: contacts' messages and delivery reports (signed callbacks), phone links;
- ``tokens``: login, logout, the per-process token cache and its revocation on every server.

It sits on top of the infrastructure apps: its scheduled jobs (recurring messages, phone-link
recovery, the messages sweep) are declared in ``messaging/jobs.py`` with the jobs framework's
``@job`` and registered at start-up by ``MessagingConfig.ready()``; nothing below imports this app.
"""
