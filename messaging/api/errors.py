"""Every error the API answers is JSON ``{"detail": ..., "field": ...}`` naming the input to fix.

``errors_install(api)`` registers one handler per kind of failure: the services' errors (400,
404, 409, 422), validation (400, with every field), authentication (401), a refused signature (403),
a locked account (429), a body too large (413), a logout other servers could not be told of
(503), and Django's 404. No client input gets a 500.
"""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from messaging.api.auth import SignatureRefused
from messaging.errors import AccountLockedOut, Conflict, InvalidInput, MessagingError, NotFound, Unprocessable
from messaging.tokens.cache import RevocationNotPublished

_STATUS_OF = {InvalidInput: 400, NotFound: 404, Conflict: 409, Unprocessable: 422}
# Where ninja says an input came from: never the name of the field at fault.
_LOCATIONS = {"body", "query", "header", "path", "payload", "filters"}


def errors_install(api: NinjaAPI) -> None:
    """Register the API's exception handlers on ``api``."""

    def error(request: HttpRequest, status: int, detail: str, field: str | None) -> HttpResponse:
        return api.create_response(request, {"detail": detail, "field": field}, status=status)

    @api.exception_handler(MessagingError)
    def _messaging_error(request: HttpRequest, exc: MessagingError) -> HttpResponse:
        return error(request, _STATUS_OF.get(type(exc), 400), exc.message, exc.field)

    @api.exception_handler(ValidationError)
    def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        errors = []
        for failure in exc.errors:
            location = [part for part in failure.get("loc", ()) if isinstance(part, str)]
            field = next((part for part in reversed(location) if part not in _LOCATIONS), "body")
            errors.append({"field": field, "message": str(failure.get("msg", "invalid"))})
        first = errors[0] if errors else {"field": "body", "message": "invalid input"}
        return api.create_response(
            request,
            {"detail": f"{first['field']}: {first['message']}", "field": first["field"], "errors": errors},
            status=400,
        )

    @api.exception_handler(AuthenticationError)
    def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        response = error(request, 401, "a valid bearer token is required", "Authorization")
        response["WWW-Authenticate"] = "Bearer"
        return response

    @api.exception_handler(SignatureRefused)
    def _signature_refused(request: HttpRequest, exc: SignatureRefused) -> HttpResponse:
        return error(request, 403, exc.detail, exc.field)

    @api.exception_handler(AccountLockedOut)
    def _locked_out(request: HttpRequest, exc: AccountLockedOut) -> HttpResponse:
        detail = f"too many failed logins for this account; retry in {exc.seconds} s"
        response = error(request, 429, detail, "username")
        response["Retry-After"] = str(exc.seconds)
        return response

    @api.exception_handler(RequestDataTooBig)
    def _too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
        return error(request, 413, "the request body is too large", "body")

    @api.exception_handler(HttpError)
    def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        detail = str(exc)
        field = "body" if detail.startswith("Cannot parse request body") else None
        return error(request, exc.status_code, "the body is not valid JSON" if field else detail, field)

    @api.exception_handler(RevocationNotPublished)
    def _revocation_not_published(request: HttpRequest, exc: RevocationNotPublished) -> HttpResponse:
        # The token is deleted, but other servers may still hold a cached copy: ask for a retry.
        response = error(request, 503, "the logout could not be confirmed on every server; retry", None)
        response["Retry-After"] = "1"
        return response

    @api.exception_handler(Http404)
    def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return error(request, 404, "not found", None)
