"""Which request id a server keeps: the one the edge sent, or a new one.

One rule for the app servers (``config.observability``) and the live server, and the same one
NGINX applies before it forwards a client's id (``deploy/nginx/nginx.conf.template``): 8 to 128
ASCII letters, digits, ``.``, ``_``, ``:`` and ``-``. An id goes into every log line as it is,
so anything else (spaces, quotes, a line break, a non-ASCII digit that ``str.isdigit()`` and
``\\d`` would let through) is replaced by a fresh one.
"""

from __future__ import annotations

import re
import uuid

_ACCEPTED = re.compile(r"[A-Za-z0-9._:-]{8,128}")


def request_id_for(given: str | None) -> str:
    """``given`` when it is an acceptable request id, else a new random one (32 hex digits)."""
    if given and _ACCEPTED.fullmatch(given):
        return given
    return uuid.uuid4().hex
