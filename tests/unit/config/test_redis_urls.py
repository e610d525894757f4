"""Redis URLs get their role's credentials; rediss:// and query options survive."""

import pytest

from config.redis_urls import has_password, redis_db_url, with_credentials

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
