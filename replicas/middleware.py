"""Read-your-writes for HTTP: one routing unit per request; the primary's WAL position after a
write kept per principal in Redis (any client), in a cookie (browsers) and in a response header
(clients that send it back as a hint). The cookie and the header are signed with an expiry: a
position counts only if a server of this deployment issued it, so nobody can pin reads to the
primary with a made-up one."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from functools import partial

from django.core.signing import BadSignature, SignatureExpired, TimestampSigner
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse

from config.metrics import record_position_hint_ignored
from replicas.conf import debug_endpoints_enabled, replica_settings
from replicas.context import RoutingState, unit_of_work, use_primary_db
from replicas.lsn import format_lsn, parse_lsn
from replicas.monitor import monitor
from replicas.positions import position_for, position_remember, principal_key
from replicas.writes import primary_lsn_after_writes

logger = logging.getLogger(__name__)

COOKIE_SALT = "replicas.read-your-writes"
HEADER_SALT = "replicas.read-your-writes.header"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
PRIMARY_ONLY_HEADER = "X-Replicas-Primary-Only"
# Sent on every response of a request that wrote: the primary's WAL position after the write,
# signed and timestamped (``position_token``).
POSITION_HEADER = "X-Replica-LSN"
# A client may send that value back unchanged (its own, or one another client handed it): for
# REPLICA_READ_YOUR_WRITES_SECONDS after the write its reads see at least everything up to it.
MIN_POSITION_HEADER = "X-Replica-Min-LSN"


def position_from_cookie(request: HttpRequest) -> int | None:
    """The WAL position in the request's signed cookie, if present, intact and young enough."""
    conf = replica_settings()
    try:
        value = request.get_signed_cookie(
            conf.cookie_name,
            default=None,
            salt=COOKIE_SALT,
            max_age=timedelta(seconds=conf.read_your_writes_seconds),
        )
    except BadSignature:
        return None
    return _position_or_none(value)


def position_token(lsn: int) -> str:
    """The ``X-Replica-LSN`` value for a position: signed with ``SECRET_KEY`` and timestamped."""
    return TimestampSigner(salt=HEADER_SALT).sign(format_lsn(lsn))


def position_from_header(request: HttpRequest) -> int | None:
    """The position in ``X-Replica-Min-LSN`` if a server issued it within the window, else None.

    Anything else (a bare position, a forged or altered signature, an expired value) is ignored
    and counted: an unchecked position could send every read of the request to the primary.
    """
    value = request.headers.get(MIN_POSITION_HEADER)
    if not value:
        return None
    try:
        position = TimestampSigner(salt=HEADER_SALT).unsign(
            value, max_age=timedelta(seconds=replica_settings().read_your_writes_seconds)
        )
    except SignatureExpired:
        record_position_hint_ignored(reason="expired")
        return None
    except BadSignature:
        record_position_hint_ignored(reason="unsigned")
        return None
    return _position_or_none(position)


def _position_or_none(value: str | None) -> int | None:
    """A WAL position from a cookie or header a client controls; None when absent or malformed."""
    if not value:
        return None
    try:
        return parse_lsn(value)
    except ValueError:
        return None


class ReadYourWritesMiddleware:
    """Each request is a routing unit of work (nothing leaks to the next request on this thread).

    - In: the primary's WAL position after this principal's last write (kept in Redis under the
      hash of the request's ``Authorization`` header or session cookie; fetched only when a
      read would otherwise go to a replica), the signed cookie's and the signed
      ``X-Replica-Min-LSN`` header's; for ``REPLICA_READ_YOUR_WRITES_SECONDS`` reads go to a
      replica only if it has replayed the largest of them.
    - Out: if the request wrote, the primary's position now goes to Redis under the principal,
      into that cookie and, signed, into the ``X-Replica-LSN`` response header.
    - A safe-method view whose replica read failed (the replica died mid-request) runs once
      more with every read on the primary, and that replica is skipped until it answers again
      (the view again, not the request: other middleware has done its part already).

    Put it before any middleware that reads the database (sessions, auth).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        # Debug builds only (never production): a header that sends a request's reads to the
        # primary, for the benchmark's all-on-the-primary baseline.
        self.honour_primary_header = debug_endpoints_enabled()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        conf = replica_settings()
        given = [
            lsn for lsn in (position_from_cookie(request), position_from_header(request)) if lsn is not None
        ]
        principal = principal_key(request)
        with unit_of_work(
            min_lsn=max(given, default=None), window_seconds=conf.read_your_writes_seconds
        ) as state:
            if principal is not None:
                state.min_lsn_loader = partial(position_for, key=principal)
            request.replica_routing = state  # type: ignore[attr-defined]
            if self.honour_primary_header and request.headers.get(PRIMARY_ONLY_HEADER):
                with use_primary_db:
                    response = self.get_response(request)
            else:
                response = self.get_response(request)
            if state.wrote_at is not None:
                self._remember_position(request, response, state, principal)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """A safe-method view whose replica read failed runs once more, every read on the primary."""
        state: RoutingState | None = getattr(request, "replica_routing", None)
        match = request.resolver_match
        if (
            state is None
            or match is None
            or request.method not in SAFE_METHODS
            or not isinstance(exception, OperationalError | InterfaceError)
            or not state.replicas_read
            or getattr(request, "replica_retried", False)
        ):
            return None
        for alias in state.replicas_read:
            monitor.mark_unreachable(alias, f"{type(exception).__name__}: {exception}")
        logger.warning("a replica read failed (%s); %s runs again on the primary", exception, request.path)
        request.replica_retried = True  # type: ignore[attr-defined]
        with use_primary_db:
            response: HttpResponse = match.func(request, *match.args, **match.kwargs)
        return response

    def _remember_position(
        self, request: HttpRequest, response: HttpResponse, state: RoutingState, principal: str | None
    ) -> None:
        lsn = primary_lsn_after_writes(state)
        if lsn is None:
            return
        if principal is not None:
            position_remember(key=principal, lsn=lsn)
        response[POSITION_HEADER] = position_token(lsn)
        conf = replica_settings()
        response.set_signed_cookie(
            conf.cookie_name,
            format_lsn(lsn),
            salt=COOKIE_SALT,
            max_age=int(conf.read_your_writes_seconds) or 1,
            secure=request.is_secure(),
            httponly=True,
            samesite="Lax",
        )
