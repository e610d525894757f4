"""``/auth/``: a staff member's username and password for a bearer token, and its revocation
(one token, or every token of the caller)."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Status

from config.bearer import bearer_token
from messaging.api.auth import request_staff
from messaging.api.schemas import ErrorOut, LoginIn, LoginOut
from messaging.tokens import services

router = Router()


@router.post(
    "/auth/login",
    auth=None,
    response={200: LoginOut, 400: ErrorOut, 401: ErrorOut, 429: ErrorOut},
    tags=["auth"],
)
def login(request: HttpRequest, payload: LoginIn) -> Status[dict[str, object]]:
    """Exchange a staff user's username and password for a bearer token.

    After too many failed logins the account is locked for a while (``logins``): 429 with
    ``Retry-After``, whatever the password.
    """
    done = services.staff_login(request=request, username=payload.username, password=payload.password)
    if done is None:
        return Status(
            401, {"detail": "wrong username or password, or not a church staff member", "field": "password"}
        )
    return Status(200, {"token": done.token, "church": done.church})


@router.post("/auth/logout", response={204: None, 401: ErrorOut, 503: ErrorOut}, tags=["auth"])
def logout(request: HttpRequest) -> Status[None]:
    """Revoke the bearer token the request was made with."""
    services.api_token_revoke(raw_token=bearer_token(request.headers.get("Authorization")) or "")
    return Status(204, None)


@router.post("/auth/logout-all", response={204: None, 401: ErrorOut, 503: ErrorOut}, tags=["auth"])
def logout_all(request: HttpRequest) -> Status[None]:
    """Revoke every token of the caller's user, the one the request was made with included
    (a lost phone, a token that leaked): every server refuses them from the next request on."""
    services.api_tokens_revoke_all(user_id=request_staff(request).user_id)
    return Status(204, None)
