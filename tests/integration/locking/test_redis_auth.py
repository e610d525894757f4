"""The lock nodes and the broker run with ACL users: the app's credentials work, none are refused."""

from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from django.conf import settings

from config.redis_urls import (
    has_password,
    is_sentinel,
    node_urls,
    sentinel_hosts,
    sentinel_master_name,
    with_credentials,
)

pytestmark = pytest.mark.integration


def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)


def _bare(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]))


@pytest.mark.parametrize("role", ["lock", "broker"])
def test_with_the_settings_credentials_every_node_answers_and_without_them_it_refuses(role):
    # the broker's master and replica, wherever the Sentinels say they are now
    urls = (
        settings.LOCK_REDIS_URLS if role == "lock" else node_urls(settings.BROKER_REDIS_URL, socket_timeout=1)
    )
    for url in urls:
        assert has_password(url)
        assert _client(url).ping() is True
        with pytest.raises(redis.AuthenticationError):
            _client(_bare(url)).ping()
        wrong = with_credentials(_bare(url), urlsplit(url).username or "default", "not-the-password")
        with pytest.raises(redis.AuthenticationError):
            _client(wrong).ping()


def test_the_brokers_sentinels_answer_the_app_user_and_refuse_anyone_without_a_password():
    if not is_sentinel(settings.BROKER_REDIS_URL):
        pytest.skip("the broker is a single node here (no BROKER_SENTINELS)")
    credentials = urlsplit(settings.BROKER_REDIS_URL)
    for host, port in sentinel_hosts(settings.BROKER_REDIS_URL):
        own = redis.Redis(host=host, port=port, username=credentials.username,
                          password=credentials.password, socket_timeout=1)  # fmt: skip
        assert own.ping() is True
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(host=host, port=port, socket_timeout=1).ping()
        # and the app's user there may only read: never steer a failover
        with pytest.raises(redis.exceptions.NoPermissionError):
            own.execute_command("SENTINEL", "FAILOVER", sentinel_master_name(settings.BROKER_REDIS_URL))
