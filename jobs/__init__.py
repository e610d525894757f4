"""Celery-beat jobs wrapped in locks, so each tick runs exactly once across servers."""
