"""The token of an ``Authorization: Bearer <token>`` header value, for every server of the project.

One parser, so the operator endpoints (health, metrics), the live server and the JSON API agree
on what a bearer header looks like: the scheme is case-insensitive (RFC 7235), one or more
spaces separate it from the token, and a value with no token, another scheme or a space inside
the token is no bearer token at all.
"""

from __future__ import annotations


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization`` header value, or None when it is absent or not ``Bearer``."""
    if not authorization:
        return None
    scheme, _, rest = authorization.strip().partition(" ")
    token = rest.strip()
    if scheme.lower() != "bearer" or not token or any(char.isspace() for char in token):
        return None
    return token
