from django.db import models


class RoutingProbe(models.Model):
    """A row written and read back by the diagnostic endpoints and tests, to see where reads go."""

    note = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"probe {self.pk}"
