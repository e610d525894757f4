"""The lock nodes and the broker run with ACL users: the app's credentials work, none are refused."""

from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from django.conf import settings

from config.redis_urls import has_password, with_credentials

pytestmark = pytest.mark.integration


def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)


def _bare(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]))


@pytest.mark.parametrize("role", ["lock", "broker"])
def test_with_the_settings_credentials_every_node_answers_and_without_them_it_refuses(role):
    urls = settings.LOCK_REDIS_URLS if role == "lock" else [settings.BROKER_REDIS_URL]
    for url in urls:
        assert has_password(url)
        assert _client(url).ping() is True
        with pytest.raises(redis.AuthenticationError):
            _client(_bare(url)).ping()
        wrong = with_credentials(_bare(url), urlsplit(url).username or "default", "not-the-password")
        with pytest.raises(redis.AuthenticationError):
            _client(wrong).ping()
