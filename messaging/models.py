"""Churches (the tenants), their staff and contacts, the messages sent and received, schedules.

Every row that belongs to a church carries ``church`` itself, even where it could be reached
through another relation, so that every query is filtered by tenant with one indexed column.
"""

from __future__ import annotations

import zoneinfo
from functools import cache

from croniter import croniter
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

BODY_MAX_LENGTH = 1600  # ten concatenated SMS segments, the common provider limit
PHONE_MAX_LENGTH = 16  # "+" and at most 15 digits (E.164)


@cache
def _time_zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def validate_time_zone(value: str) -> None:
    if value not in _time_zone_names():
        raise ValidationError(f"'{value}' is not an IANA time zone name.")


def validate_cron(value: str) -> None:
    if not croniter.is_valid(value):
        raise ValidationError(f"'{value}' is not a valid cron expression.")


class Church(models.Model):
    name = models.CharField(max_length=200)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "churches"

    def __str__(self) -> str:
        return self.name


class StaffMember(models.Model):
    """Makes a Django user a member of one church's staff; the API serves only staff."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff")
    church = models.ForeignKey(Church, on_delete=models.CASCADE, related_name="staff")

    def __str__(self) -> str:
        return f"{self.user} @ {self.church}"


class ApiToken(models.Model):
    """A bearer token; only its SHA-256 is stored, so a database leak gives no usable token."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"token of {self.user} (expires {self.expires_at:%Y-%m-%d %H:%M})"


class ContactGroup(models.Model):
    """A named audience, e.g. "youth" or "choir", that a recurring message can target."""

    church = models.ForeignKey(Church, on_delete=models.CASCADE, related_name="groups")
    name = models.CharField(max_length=100)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["church", "name"], name="group_unique_per_church")]

    def __str__(self) -> str:
        return self.name


class Contact(models.Model):
    church = models.ForeignKey(Church, on_delete=models.CASCADE, related_name="contacts")
    phone = models.CharField(max_length=PHONE_MAX_LENGTH, help_text="E.164, e.g. +12025550123")
    name = models.CharField(max_length=200, blank=True)
    opted_out = models.BooleanField(default=False)
    groups = models.ManyToManyField(ContactGroup, blank=True, related_name="contacts")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["church", "phone"], name="contact_phone_unique_per_church")
        ]
        indexes = [models.Index(fields=["church", "id"], name="contact_church_id")]

    def __str__(self) -> str:
        return f"{self.name} {self.phone}".strip()


class RecurringMessage(models.Model):
    church = models.ForeignKey(Church, on_delete=models.CASCADE, related_name="recurring_messages")
    body = models.TextField(max_length=BODY_MAX_LENGTH)
    # No group means every contact of the church that has not opted out.
    group = models.ForeignKey(
        ContactGroup, null=True, blank=True, on_delete=models.PROTECT, related_name="recurring_messages"
    )
    cron = models.CharField(
        max_length=100, validators=[validate_cron], help_text="evaluated in the church's time zone"
    )
    next_run_at = models.DateTimeField(null=True, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["next_run_at"], condition=Q(active=True), name="recurring_due"),
        ]

    def __str__(self) -> str:
        return f"{self.cron}: {self.body[:40]}"


class Message(models.Model):
    class Direction(models.TextChoices):
        INBOUND = "inbound"
        OUTBOUND = "outbound"

    class Status(models.TextChoices):
        QUEUED = "queued"
        # Claimed by one worker, which is calling the provider (ADR 0011): nobody else sends it.
        SENDING = "sending"
        SENT = "sent"
        DELIVERED = "delivered"
        FAILED = "failed"
        # Its worker stopped between the claim and the provider's answer, and the provider takes
        # no idempotency key: it may or may not have gone out, so a person decides (never resent).
        REVIEW = "review"

    # Indexed by message_church_id; the recurring message by the once-per-occurrence constraint.
    church = models.ForeignKey(Church, on_delete=models.CASCADE, related_name="messages", db_index=False)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="messages")
    direction = models.CharField(max_length=8, choices=Direction.choices)
    # Inbound messages are stored as delivered: they reached the church.
    body = models.TextField(max_length=BODY_MAX_LENGTH)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    # NULL, not "", when absent: the unique constraints below skip NULLs.
    provider_message_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    # Per recipient: "<Idempotency-Key header>:<contact id>" for API sends.
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    error = models.TextField(blank=True)
    recurring_message = models.ForeignKey(
        RecurringMessage,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="messages",
        db_index=False,
    )
    occurrence = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # When a worker last claimed it for sending (status ``sending``), and how many claims so far.
    claimed_at = models.DateTimeField(null=True, blank=True)
    send_attempts = models.PositiveSmallIntegerField(default=0, db_default=0)  # raw INSERTs too

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["provider_message_id"],
                condition=Q(provider_message_id__isnull=False),
                name="message_provider_id_unique",
            ),
            models.UniqueConstraint(
                fields=["church", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="message_idempotency_key_unique_per_church",
            ),
            # No schedule bug can ever send one occurrence twice to one person.
            models.UniqueConstraint(
                fields=["recurring_message", "occurrence", "contact"],
                name="message_once_per_occurrence_and_contact",
            ),
            models.CheckConstraint(
                condition=Q(recurring_message__isnull=True, occurrence__isnull=True)
                | Q(recurring_message__isnull=False, occurrence__isnull=False),
                name="message_occurrence_with_recurring_message",
            ),
        ]
        indexes = [
            # The sweep's search for messages left behind: a small partial index.
            models.Index(
                fields=["updated_at"],
                name="message_unsent_updated_at",
                condition=Q(status__in=["queued", "sending"]),
            ),
            models.Index(fields=["church", "id"], name="message_church_id"),
            models.Index(fields=["church", "contact", "id"], name="message_church_contact_id"),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.status} to {self.contact_id}"


class IdempotentRequest(models.Model):
    """The answer to an API request sent with an ``Idempotency-Key``, so a retry gets it again."""

    church = models.ForeignKey(Church, on_delete=models.CASCADE, related_name="idempotent_requests")
    key = models.CharField(max_length=200)
    request_fingerprint = models.CharField(max_length=64)
    message_ids = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["church", "key"], name="idempotent_request_unique_per_church")
        ]

    def __str__(self) -> str:
        return self.key


class WebhookDelivery(models.Model):
    """A provider callback's signature, accepted once: a second delivery of it is a replay.

    In PostgreSQL, not the broker's Redis: Redis replication is asynchronous, and a failover that
    lost the mark would let the replay through (ADR 0019). Kept until ``expires_at`` (twice the
    allowed clock skew), after which the signature no longer verifies anyway.
    """

    signature = models.CharField(max_length=128, primary_key=True)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.signature


class PhoneLink(models.Model):
    """A sending number being linked to a church at the provider."""

    class State(models.TextChoices):
        PENDING = "pending"
        LINKED = "linked"
        FAILED = "failed"

    church = models.ForeignKey(Church, on_delete=models.CASCADE, related_name="phone_links")
    phone = models.CharField(max_length=PHONE_MAX_LENGTH, unique=True)
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.phone} ({self.state})"


class DevelopmentSms(models.Model):
    """What the development gateway would have sent; inspectable in the admin and by tests."""

    to = models.CharField(max_length=PHONE_MAX_LENGTH)
    from_number = models.CharField(max_length=PHONE_MAX_LENGTH)
    body = models.TextField()
    provider_message_id = models.CharField(max_length=64, unique=True)
    # The key the sender gave (one per message); a second row with the same key is a duplicate
    # send, which the development gateway records rather than hides.
    idempotency_key = models.CharField(max_length=64, blank=True, db_index=True)
    duplicate = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "development SMS"
        verbose_name_plural = "development SMS"

    def __str__(self) -> str:
        return f"to {self.to}: {self.body[:40]}"
