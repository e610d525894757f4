"""Redis URLs with their credentials: hosts in one variable, the ACL user and password in others.

Deployments keep node addresses in configuration (``redis://`` or ``rediss://`` for TLS; add
``?ssl_cert_reqs=required`` and, for a private CA, ``&ssl_ca_certs=/path``) and the password in
a Secret. Settings put the credentials into every URL that carries none.

The broker is one node (``BROKER_REDIS_URL``, a managed Redis that fails over behind one address)
or a master found through Redis Sentinel (``BROKER_SENTINELS``, ``BROKER_SENTINEL_MASTER``; ADR
0019). Sentinel's address is then one URL in python-socketio's form,
``redis+sentinel://user:password@host1:port1,host2:port2/<db>/<master name>``, and the functions
below turn it into what each client takes: kombu's ``sentinel://`` list, django-redis's
``SentinelClient`` options, a redis-py client through ``Sentinel.master_for``. The Sentinels take
the same ACL user and password as the nodes.
"""

from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import environ
import redis
from django.core.exceptions import ImproperlyConfigured
from redis.sentinel import Sentinel

SENTINEL_SCHEME = "redis+sentinel"

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
    if is_sentinel(url):
        return urlunsplit(urlsplit(url)._replace(path=f"/{db}/{sentinel_master_name(url)}"))
    return urlunsplit(urlsplit(url)._replace(path=f"/{db}"))


def is_sentinel(url: str) -> bool:
    return urlsplit(url).scheme == SENTINEL_SCHEME


def sentinel_url(hosts: list[str], master: str, db: int = 0) -> str:
    """``redis+sentinel://host1:port1,.../db/master`` (credentials are added by ``with_credentials``)."""
    if not master or "/" in master:
        raise ImproperlyConfigured(f"BROKER_SENTINEL_MASTER={master!r} is not a master name")
    for host in hosts:
        name, _, port = host.rpartition(":")
        if not name or not port.isdigit():
            raise ImproperlyConfigured(f"BROKER_SENTINELS: {host!r} is not host:port")
    return f"{SENTINEL_SCHEME}://{','.join(hosts)}/{db}/{master}"


def sentinel_hosts(url: str) -> list[tuple[str, int]]:
    hosts = []
    for host_port in urlsplit(url).netloc.rsplit("@", 1)[-1].split(","):
        host, port = host_port.rsplit(":", 1)
        hosts.append((host, int(port)))
    return hosts


def sentinel_master_name(url: str) -> str:
    parts = urlsplit(url).path.split("/")
    return parts[2] if len(parts) > 2 else ""


def _db(url: str) -> int:
    part = urlsplit(url).path.split("/")[1:2]
    return int(part[0]) if part and part[0] else 0


def _credentials(url: str) -> dict[str, str]:
    parts = urlsplit(url)
    found = {"username": parts.username, "password": parts.password}
    return {key: unquote(value) for key, value in found.items() if value}


def sentinel(url: str, **options: Any) -> Sentinel:
    """A redis-py Sentinel for ``url``; ``options`` (timeouts) apply to the Sentinels and the nodes."""
    credentials = _credentials(url)
    return Sentinel(sentinel_hosts(url), sentinel_kwargs={**credentials, **options}, **credentials, **options)


def redis_client(url: str, **options: Any) -> redis.Redis:
    """A client of the node ``url`` names, or of the master Sentinel names now (``redis+sentinel``).

    A Sentinel-managed client asks for the master again when its connection fails or meets a
    demoted master, so it follows a failover by itself.
    """
    if is_sentinel(url):
        client: redis.Redis = sentinel(url, **options).master_for(sentinel_master_name(url), db=_db(url))
        return client
    return redis.Redis.from_url(url, **options)


def pubsub_options(url: str, **options: Any) -> dict[str, Any]:
    """python-socketio's ``redis_options`` for ``url``: with Sentinel, the Sentinels' own login
    too (python-socketio takes the nodes' from the URL)."""
    if is_sentinel(url):
        return {**options, "sentinel_kwargs": {**_credentials(url), **options}}
    return options


def celery_url(url: str) -> str:
    """kombu's form: one ``sentinel://user:password@host:port/db`` per Sentinel, ``;``-separated."""
    if not is_sentinel(url):
        return url
    parts = urlsplit(url)
    userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return ";".join(f"sentinel://{userinfo}{host}:{port}/{_db(url)}" for host, port in sentinel_hosts(url))


def celery_transport_options(url: str, **options: Any) -> dict[str, Any]:
    """Celery's broker (or result backend) transport options, with the master name and the
    Sentinels' login when ``url`` is a Sentinel URL."""
    if not is_sentinel(url):
        return options
    sentinel_options = {key: value for key, value in options.items() if key.startswith("socket_")}
    return {
        **options,
        "master_name": sentinel_master_name(url),
        "sentinel_kwargs": {**_credentials(url), **sentinel_options},
    }


def cache_location(url: str, db: int, options: dict[str, Any]) -> dict[str, Any]:
    """django-redis's ``LOCATION`` and ``OPTIONS`` for database ``db`` of ``url``.

    With Sentinel, one location only, the master's: django-redis would otherwise read from the
    replica, which may not have the last write yet (ADR 0019).
    """
    if not is_sentinel(url):
        return {"LOCATION": redis_db_url(url, db), "OPTIONS": options}
    parts = urlsplit(url)
    userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    sentinel_options = {key.lower(): value for key, value in options.items() if key.startswith("SOCKET_")}
    return {
        "LOCATION": [f"redis://{userinfo}{sentinel_master_name(url)}/{db}"],
        "OPTIONS": {
            **options,
            "CLIENT_CLASS": "django_redis.client.SentinelClient",
            "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
            "SENTINELS": sentinel_hosts(url),
            "SENTINEL_KWARGS": {**_credentials(url), **sentinel_options},
        },
    }


def has_password(url: str) -> bool:
    return bool(urlsplit(url).password)


def broker_redis_url(env: environ.Env, url: str | None = None) -> str:
    """The broker's URL with the broker's credentials: ``url`` if given, else the Sentinels'
    (``BROKER_SENTINELS``, ``BROKER_SENTINEL_MASTER``) if set, else ``BROKER_REDIS_URL``."""
    if url is None:
        sentinels = env.list("BROKER_SENTINELS", default=[])
        if sentinels:
            url = sentinel_url(sentinels, env("BROKER_SENTINEL_MASTER", default="broker"))
        else:
            url = env("BROKER_REDIS_URL", default=BROKER_DEFAULT)
    return with_credentials(
        url,
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


def node_urls(url: str, **options: Any) -> list[str]:
    """Every node ``url`` reaches, each as its own ``redis://`` URL with the same credentials:
    ``url`` itself, or (Sentinel) the master and the replicas the Sentinels name now. For tools
    and tests that check each node; the app talks to the master only."""
    if not is_sentinel(url):
        return [url]
    manager = sentinel(url, **options)
    name = sentinel_master_name(url)
    nodes = [manager.discover_master(name), *manager.discover_slaves(name)]
    parts = urlsplit(url)
    userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return [f"redis://{userinfo}{host}:{port}/{_db(url)}" for host, port in nodes]
