"""The workload being scaled: churches, contacts, messages, the JSON API and webhooks.

It sits on top of the infrastructure apps: its scheduled jobs (recurring messages, phone-link
recovery) are declared in ``messaging/jobs.py`` with the jobs framework's ``@job`` and
registered at start-up by ``MessagingConfig.ready()``; nothing below imports this app.
"""
