"""The one capped exponential backoff, shared by job retries, phone-link retries and the SMS gateway."""


def capped_backoff(*, attempt: int, base: float, cap: float) -> float:
    """Seconds to wait after the ``attempt``-th failed try: ``base * 2**(attempt-1)``, at most ``cap``."""
    return float(min(base * 2 ** max(0, attempt - 1), cap))
