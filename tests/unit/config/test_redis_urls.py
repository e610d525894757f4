"""Redis URLs get their role's credentials; rediss:// and query options survive."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from redis.sentinel import SentinelConnectionPool

from config.redis_urls import (
    cache_location,
    celery_transport_options,
    celery_url,
    has_password,
    is_sentinel,
    pubsub_options,
    redis_client,
    redis_db_url,
    sentinel_hosts,
    sentinel_master_name,
    sentinel_url,
    with_credentials,
)

pytestmark = pytest.mark.unit


def test_credentials_go_into_a_url_without_any():
    assert with_credentials("redis://r1:6379/0", "app", "p@ss/word") == "redis://app:p%40ss%2Fword@r1:6379/0"


def test_a_url_with_its_own_credentials_or_no_password_is_kept():
    assert with_credentials("redis://u:pw@r1:6379/0", "app", "other") == "redis://u:pw@r1:6379/0"
    assert with_credentials("redis://r1:6379/0", "app", "") == "redis://r1:6379/0"


def test_tls_urls_keep_their_options_when_given_credentials_and_a_database():
    url = with_credentials("rediss://r1:6380?ssl_cert_reqs=required", "app", "pw")
    assert redis_db_url(url, 1) == "rediss://app:pw@r1:6380/1?ssl_cert_reqs=required"
    assert has_password(url) and not has_password("rediss://r1:6380")


SENTINEL = "redis+sentinel://app:p%40ss@s1:26379,s2:26380,s3:26381/0/broker"


def test_the_sentinels_and_master_name_make_one_url_that_takes_credentials_and_a_database():
    url = with_credentials(sentinel_url(["s1:26379", "s2:26380", "s3:26381"], "broker"), "app", "p@ss")
    assert url == SENTINEL
    assert is_sentinel(url) and has_password(url)
    assert redis_db_url(url, 1) == "redis+sentinel://app:p%40ss@s1:26379,s2:26380,s3:26381/1/broker"
    assert sentinel_hosts(url) == [("s1", 26379), ("s2", 26380), ("s3", 26381)]
    assert sentinel_master_name(redis_db_url(url, 2)) == "broker"


@pytest.mark.parametrize("name", ["", "a/b"])
def test_a_master_name_that_cannot_be_one_is_refused(name):
    with pytest.raises(ImproperlyConfigured, match="BROKER_SENTINEL_MASTER"):
        sentinel_url(["s1:26379"], name)


@pytest.mark.parametrize("host", ["s1", "s1:port", ":26379"])
def test_a_sentinel_address_without_host_and_port_is_refused(host):
    with pytest.raises(ImproperlyConfigured, match=f"BROKER_SENTINELS: '{host}' is not host:port"):
        sentinel_url(["s2:26379", host], "broker")


def test_celery_gets_kombus_sentinel_list_and_the_master_name_with_the_sentinels_login():
    assert celery_url(redis_db_url(SENTINEL, 2)) == (
        "sentinel://app:p%40ss@s1:26379/2;sentinel://app:p%40ss@s2:26380/2;sentinel://app:p%40ss@s3:26381/2"
    )
    options = celery_transport_options(SENTINEL, socket_timeout=5, visibility_timeout=60)
    assert options == {
        "socket_timeout": 5,
        "visibility_timeout": 60,
        "master_name": "broker",
        "sentinel_kwargs": {"username": "app", "password": "p@ss", "socket_timeout": 5},
    }


def test_a_single_node_url_passes_through_unchanged():
    url = "redis://app:pw@r1:6379/0"
    assert celery_url(url) == url
    assert celery_transport_options(url, socket_timeout=5) == {"socket_timeout": 5}
    assert pubsub_options(url, socket_timeout=1) == {"socket_timeout": 1}
    assert cache_location(url, 1, {"SOCKET_TIMEOUT": 1}) == {
        "LOCATION": "redis://app:pw@r1:6379/1",
        "OPTIONS": {"SOCKET_TIMEOUT": 1},
    }


def test_the_cache_through_sentinel_reads_and_writes_the_master_only():
    config = cache_location(SENTINEL, 1, {"SOCKET_TIMEOUT": 1})
    # one location: django-redis's SentinelClient would read from the replica given a string
    assert config["LOCATION"] == ["redis://app:p%40ss@broker/1"]
    assert config["OPTIONS"]["CLIENT_CLASS"] == "django_redis.client.SentinelClient"
    assert config["OPTIONS"]["CONNECTION_FACTORY"] == "django_redis.pool.SentinelConnectionFactory"
    assert config["OPTIONS"]["SENTINELS"] == [("s1", 26379), ("s2", 26380), ("s3", 26381)]
    assert config["OPTIONS"]["SENTINEL_KWARGS"] == {
        "username": "app",
        "password": "p@ss",
        "socket_timeout": 1,
    }


def test_python_socketio_gets_the_sentinels_login_beside_the_url():
    assert pubsub_options(SENTINEL, socket_timeout=1) == {
        "socket_timeout": 1,
        "sentinel_kwargs": {"username": "app", "password": "p@ss", "socket_timeout": 1},
    }


def test_a_sentinel_client_asks_for_the_named_master_in_the_urls_database():
    client = redis_client(redis_db_url(SENTINEL, 3), socket_timeout=1)
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "broker"
    assert pool.connection_kwargs["db"] == 3
    assert pool.connection_kwargs["password"] == "p@ss"
    sentinel_node = pool.sentinel_manager.sentinels[0].connection_pool.connection_kwargs
    assert (sentinel_node["host"], sentinel_node["username"], sentinel_node["password"]) == (
        "s1",
        "app",
        "p@ss",
    )
