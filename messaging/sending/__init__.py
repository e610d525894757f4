"""Outbound messages: queued by the API or a recurring message, claimed and handed to the SMS
provider (``messaging.gateway``) at most once each by Celery workers, swept when left behind."""
