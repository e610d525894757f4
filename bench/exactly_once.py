"""The Sunday burst's exactly-once check, made at the provider for every message.

Counting rows grouped by the columns of a unique constraint cannot find a duplicate: the
constraint already refused it. What a recipient gets is what reached the provider, so the check
reads the development gateway's record of calls (``DevelopmentSms``, one row per call, with the
idempotency key the sender gave: ``message-<id>``) made since the burst began, and sets it
against every message of the burst and every recipient of its audience:

- every message reached the provider exactly once (none unsent, none twice);
- every recipient (a contact of a church with a burst message, not opted out) got exactly one
  SMS, whichever of the burst's messages carried it (two messages to one person are a duplicate
  even if each was sent once);
- no call the provider recorded in that time is unaccounted for.

:func:`provider_check` runs the counts in one query on the primary; :meth:`ProviderCheck.problems`
says what is wrong in words, empty when the burst was delivered exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass

QUERY = """
WITH burst AS (
    SELECT id, church_id FROM messaging_recurringmessage WHERE body = %(body)s
), calls AS (
    SELECT idempotency_key, count(*) AS n FROM messaging_developmentsms
    WHERE id > %(first)s GROUP BY idempotency_key
), per_message AS (
    SELECT m.id, m.contact_id, coalesce(c.n, 0) AS n
    FROM messaging_message m LEFT JOIN calls c ON c.idempotency_key = %(prefix)s || m.id
    WHERE m.recurring_message_id IN (SELECT id FROM burst)
), audience AS (
    SELECT id FROM messaging_contact
    WHERE church_id IN (SELECT church_id FROM burst) AND NOT opted_out
), per_recipient AS (
    SELECT a.id, coalesce(sum(p.n), 0) AS n
    FROM audience a LEFT JOIN per_message p ON p.contact_id = a.id GROUP BY a.id
)
SELECT
    (SELECT count(*) FROM audience),
    (SELECT count(*) FROM per_message),
    (SELECT coalesce(sum(n), 0) FROM calls),
    (SELECT count(*) FROM per_message WHERE n = 0),
    (SELECT count(*) FROM per_message WHERE n > 1),
    (SELECT count(*) FROM per_recipient WHERE n = 0),
    (SELECT count(*) FROM per_recipient WHERE n > 1),
    (SELECT coalesce(sum(n), 0) FROM per_message)
"""


@dataclass(frozen=True)
class ProviderCheck:
    recipients: int  # the burst's audience
    messages: int  # the burst's messages
    provider_calls: int  # every call the provider recorded since the burst began
    unsent: int  # messages without a provider call
    sent_twice: int  # messages with more than one
    recipients_without_sms: int
    recipients_more_than_once: int
    calls_for_messages: int  # the calls that carry a burst message's key

    def problems(self) -> list[str]:
        """What keeps the burst from being delivered exactly once; empty when it was."""
        out = []
        if self.messages != self.recipients:
            out.append(f"{self.messages:,} messages for {self.recipients:,} recipients")
        if self.unsent:
            out.append(f"{self.unsent:,} messages never reached the provider")
        if self.sent_twice:
            out.append(f"{self.sent_twice:,} messages reached the provider more than once")
        if self.recipients_without_sms:
            out.append(f"{self.recipients_without_sms:,} recipients got no SMS")
        if self.recipients_more_than_once:
            out.append(f"{self.recipients_more_than_once:,} recipients got more than one SMS")
        stray = self.provider_calls - self.calls_for_messages
        if stray:
            out.append(f"{stray:,} provider calls carry no message of the burst")
        return out

    @property
    def exactly_once(self) -> bool:
        return not self.problems()


def key_prefix() -> str:
    """What the sender puts before a message's id in its idempotency key."""
    from messaging.sending.services import message_idempotency_key

    return message_idempotency_key(message_id=0).removesuffix("0")


def provider_check(*, body: str, first_provider_id: int) -> ProviderCheck:
    """The counts for the burst whose recurring messages have ``body``, against the provider's
    calls recorded after row ``first_provider_id``."""
    from django.db import connections

    from config.databases import PRIMARY_DB_ALIAS

    with connections[PRIMARY_DB_ALIAS].cursor() as cursor:
        cursor.execute(QUERY, {"body": body, "first": first_provider_id, "prefix": key_prefix()})
        row = cursor.fetchone()
    return ProviderCheck(*(int(value) for value in row))
