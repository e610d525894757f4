"""The database side of the lock: fencing tokens and the audit of every grant.

Both tables live on the primary and are always written with ``using(PRIMARY_DB_ALIAS)``.
"""

from django.db import models


class LockFence(models.Model):
    """The last fencing token issued for one lock name; it only ever goes up.

    Tokens are issued by one ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` statement, which
    is safe through PgBouncer in transaction mode (no session state, no advisory locks).
    """

    name = models.CharField(primary_key=True, max_length=200)
    token = models.BigIntegerField()
    # The grant the token was issued to (its Redis owner id; "" after a force-release). The fence
    # compares it with the token, so a token that repeats (an asynchronous failover lost the
    # last increment) still cannot let an older holder through. A database default keeps the
    # inserts of servers still running the previous release working during a rolling deploy.
    owner = models.CharField(max_length=300, blank=True, default="", db_default="")
    updated = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name}#{self.token}"


class LockGrant(models.Model):
    """One row per grant of a lock: who held it, for how long, and how it ended."""

    class Outcome(models.TextChoices):
        HELD = "held", "held"
        RELEASED = "released", "released"
        EXPIRED = "expired", "expired"
        LOST = "lost", "lost"
        FORCE_RELEASED = "force-released", "force-released"

    name = models.CharField(max_length=200)
    token = models.BigIntegerField(null=True, blank=True)
    owner = models.CharField(max_length=300, unique=True, help_text="the value stored on the Redis nodes")
    server = models.CharField(max_length=200)
    pid = models.IntegerField()
    ttl_ms = models.IntegerField()
    acquired = models.DateTimeField()
    last_renewed = models.DateTimeField(null=True, blank=True)
    renewals = models.IntegerField(default=0)
    expires = models.DateTimeField()
    released = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, default=Outcome.HELD)
    force_released_by = models.CharField(max_length=150, blank=True)
    force_release_reason = models.TextField(blank=True, help_text="why the operator took the lock away")

    class Meta:
        ordering = ["-acquired"]
        indexes = [models.Index(fields=["name", "outcome"], name="locking_grant_name_outcome")]
        permissions = [("force_release_lock", "Can force-release a distributed lock")]

    def __str__(self) -> str:
        return f"{self.name}#{self.token} ({self.outcome})"
