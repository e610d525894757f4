"""PostgreSQL WAL positions (LSNs) as integers, so they compare and subtract."""


def parse_lsn(text: str) -> int:
    """``'16/B374D848'`` -> a byte position; raises ``ValueError`` on anything else."""
    high, sep, low = text.strip().partition("/")
    if not sep:
        raise ValueError(f"not an LSN: {text!r}")
    return (int(high, 16) << 32) | int(low, 16)


def format_lsn(position: int) -> str:
    """A byte position in PostgreSQL's ``X/Y`` notation."""
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"
