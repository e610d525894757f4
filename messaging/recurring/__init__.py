"""Recurring messages: a cron schedule in the church's time zone, sent to a group or to every
contact by the recurring-messages job (``messaging/jobs.py``), each occurrence once."""
