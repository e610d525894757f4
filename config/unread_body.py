"""Read what a view left of the request body before the response goes out.

A view that answers early (a 404, 401 or 403 for a POST) does not read the body. gunicorn then
closes the connection instead of reading up to the next request, while NGINX is still sending
the body it buffered: NGINX's send fails with EPIPE, it counts the server as failed and answers
its own 502, which the edge turns into the overload 503. The client sees "try again later" for
what was a plain 404. Reading the rest here keeps the connection whole and the answer the app's.

Only bodies up to ``MAX_DRAIN_BYTES`` (the edge's largest ``client_max_body_size``) are read; a
larger declared body is left to gunicorn, which closes the connection as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

MAX_DRAIN_BYTES = 1024 * 1024
_CHUNK = 64 * 1024

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def drain_unread_body(app: WSGIApp) -> WSGIApp:
    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        result = app(environ, start_response)
        try:
            declared = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if 0 < declared <= MAX_DRAIN_BYTES:
            stream = environ.get("wsgi.input")
            if stream is not None:
                # Reads return b"" at once when the view consumed the body (the usual case).
                while stream.read(_CHUNK):
                    pass
        return result

    return application
