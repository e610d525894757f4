"""The one parser of ``Authorization: Bearer <token>`` header values."""

import pytest

from config.bearer import bearer_token

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("authorization", "token"),
    [
        ("Bearer abc.def-123", "abc.def-123"),
        # the scheme is case-insensitive (RFC 7235)
        ("bearer abc", "abc"),
        ("BEARER abc", "abc"),
        # spaces around the token are not part of it
        ("Bearer   abc  ", "abc"),
    ],
)
def test_a_bearer_header_gives_its_token(authorization, token):
    assert bearer_token(authorization) == token


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer    ",
        "Basic abc",
        "Token abc",
        "Bearerabc",
        "abc",
        # a space inside is not one token
        "Bearer abc def",
    ],
)
def test_anything_else_gives_no_token(authorization):
    assert bearer_token(authorization) is None
