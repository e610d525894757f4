"""The primary's alias, and psycopg connections of the project's own from a ``DATABASES`` entry.

``PRIMARY_DB_ALIAS`` is the one name of the primary (reached through PgBouncer): every write,
migration and forced read goes there. Code that must use the primary names it, never a literal.

Some parts open a psycopg connection of their own next to Django's, because Django's cannot be
bounded or held the way they need: the health probes (a hard deadline per query) and the replica
monitor (one long-lived autocommit connection per server). :func:`connect` builds it from the
same ``DATABASES`` entry Django uses, as Django's PostgreSQL backend does: host, port, name, user
and password, and every libpq option the entry's ``OPTIONS`` set (``sslmode``, ``sslrootcert``,
``connect_timeout``, ``application_name``, ``options``, ...), so a deployment that requires TLS
or a certificate gets it on these connections too. Django's own keys in ``OPTIONS``
(``isolation_level``, ``pool``, ``prepare_threshold``, ...) are not libpq's and are left out;
the caller passes what its connection needs on top (``autocommit``, ``prepare_threshold``, a
shorter ``connect_timeout``, its own ``application_name``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import pq

PRIMARY_DB_ALIAS = "default"


def connection_params(settings_dict: Mapping[str, Any], **overrides: Any) -> dict[str, Any]:
    """psycopg ``connect()`` keywords for the server a ``DATABASES`` entry names; ``overrides`` win."""
    options = settings_dict.get("OPTIONS") or {}
    params: dict[str, Any] = {key: value for key, value in options.items() if key in _libpq_keywords()}
    params["dbname"] = settings_dict.get("NAME") or "postgres"
    for key, setting in (("host", "HOST"), ("port", "PORT"), ("user", "USER"), ("password", "PASSWORD")):
        if settings_dict.get(setting):  # empty means libpq's default, as for Django
            params[key] = settings_dict[setting]
    params.update(overrides)
    return params


def connect(settings_dict: Mapping[str, Any], **overrides: Any) -> psycopg.Connection[Any]:
    """A new psycopg connection (see :func:`connection_params`); the caller closes it."""
    return psycopg.connect(**connection_params(settings_dict, **overrides))


@functools.cache
def _libpq_keywords() -> frozenset[str]:
    # Asked of the libpq in use, so an option a newer libpq adds is honoured without a change here.
    return frozenset(option.keyword.decode() for option in pq.Conninfo.get_defaults())
