"""Redis URLs with their credentials: hosts in one variable, the ACL user and password in others.

Deployments keep node addresses in configuration (``redis://`` or ``rediss://`` for TLS; add
``?ssl_cert_reqs=required`` and, for a private CA, ``&ssl_ca_certs=/path``) and the password in
a Secret. Settings put the credentials into every URL that carries none.
"""

from urllib.parse import quote, urlsplit, urlunsplit

import environ

BROKER_DEFAULT = "redis://127.0.0.1:26390"
LOCK_DEFAULTS = ["redis://127.0.0.1:26379/0", "redis://127.0.0.1:26380/0", "redis://127.0.0.1:26381/0"]


def with_credentials(url: str, username: str, password: str) -> str:
    parts = urlsplit(url)
    if not password or "@" in parts.netloc:
        return url
    user = quote(username, safe="")
    return urlunsplit(parts._replace(netloc=f"{user}:{quote(password, safe='')}@{parts.netloc}"))


def redis_db_url(url: str, db: int) -> str:
    """``url`` pointing at database ``db`` (a query string, as rediss:// options need, is kept)."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{db}"))


def has_password(url: str) -> bool:
    return bool(urlsplit(url).password)


def broker_redis_url(env: environ.Env, url: str | None = None) -> str:
    """The broker node's URL (``BROKER_REDIS_URL`` unless given) with the broker's credentials."""
    return with_credentials(
        url if url is not None else env("BROKER_REDIS_URL", default=BROKER_DEFAULT),
        env("BROKER_REDIS_USERNAME", default="default"),
        env("BROKER_REDIS_PASSWORD", default=""),
    )


def lock_redis_urls(env: environ.Env) -> list[str]:
    """The lock nodes' URLs (``LOCK_REDIS_URLS``) with the lock nodes' credentials."""
    username = env("LOCK_REDIS_USERNAME", default="default")
    password = env("LOCK_REDIS_PASSWORD", default="")
    return [
        with_credentials(url, username, password)
        for url in env.list("LOCK_REDIS_URLS", default=LOCK_DEFAULTS)
    ]
