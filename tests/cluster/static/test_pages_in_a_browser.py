"""The admin and the API docs, opened through NGINX in a real headless Chromium, load every
stylesheet and script they name, from this origin, with long cache lifetimes for hashed files."""

import re
from urllib.parse import quote, urlsplit

import pytest

from deploy.nginx.render import RATELIMIT_BYPASS_HEADER
from tests.browser import Browser

pytestmark = pytest.mark.cluster

# The admin's own header colour (admin/css/base.css, --header-bg): unstyled, it is transparent.
ADMIN_HEADER_BACKGROUND = "rgb(65, 118, 144)"
HASHED = re.compile(r"\.[0-9a-f]{12}\.(css|js)$")


@pytest.fixture
def browser(tmp_path):
    with Browser(tmp_path / "profile") as browser:
        yield browser


@pytest.fixture
def bypass(cluster_settings) -> dict[str, str]:
    # the page and its assets come from one client in a burst: not the rate-limit tests' business
    return {RATELIMIT_BYPASS_HEADER: cluster_settings.ratelimit_bypass_token()}


@pytest.fixture
def admin_session_cookie(http, nginx_url, cluster_settings) -> dict:
    """Log in as the cluster's admin (a real form post through NGINX); the browser's cookie."""
    login = f"{nginx_url}/admin/login/"
    form = http.get(login, timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
    assert token, form.text[:500]
    password = (cluster_settings.state_dir / "admin-password").read_text().strip()
    reply = http.post(
        login,
        data={
            "csrfmiddlewaretoken": token.group(1),
            "username": "admin",
            "password": password,
            "next": "/admin/",
        },
        headers={"Referer": login},
        allow_redirects=False,
        timeout=10,
    )
    assert reply.status_code == 302, reply.text[:500]
    return {"name": "sessionid", "value": http.cookies["sessionid"], "url": nginx_url, "secure": True}


def _assert_every_asset_loaded(page, origin: str, *, stylesheets: int, scripts: int) -> None:
    assert page.broken("Document", "Stylesheet", "Script") == []
    assert len(page.of_kind("Stylesheet")) >= stylesheets
    assert len(page.of_kind("Script")) >= scripts
    for fetch in page.of_kind("Stylesheet", "Script"):
        # served here (the edge's CSP allows nothing else) under a content-hashed name, cached a year
        assert fetch.url.startswith(f"{origin}/static/"), fetch.url
        assert HASHED.search(urlsplit(fetch.url).path), fetch.url
        assert "immutable" in fetch.headers.get("cache-control", ""), (fetch.url, fetch.headers)
        max_age = re.search(r"max-age=(\d+)", fetch.headers["cache-control"])
        assert max_age and int(max_age.group(1)) >= 31536000, fetch.headers
    assert page.console_errors == []


def test_the_admin_login_page_loads_its_styles_and_scripts(browser, nginx_url, bypass):
    # when a person opens the admin through the edge
    page = browser.load(f"{nginx_url}/admin/login/", headers=bypass)
    # then every stylesheet and script arrived and the page is styled
    _assert_every_asset_loaded(page, nginx_url, stylesheets=3, scripts=1)
    assert browser.evaluate("getComputedStyle(document.getElementById('header')).backgroundColor") == (
        ADMIN_HEADER_BACKGROUND
    )


def test_the_active_locks_page_renders_styled_for_a_logged_in_admin(
    browser, nginx_url, bypass, admin_session_cookie
):
    # when the admin opens the page the design names as the operators' main use
    page = browser.load(
        f"{nginx_url}/admin/locking/lockgrant/active/", headers=bypass, cookies=(admin_session_cookie,)
    )
    # then it is the page itself (not the login form) with every asset loaded
    assert browser.evaluate("document.location.pathname") == "/admin/locking/lockgrant/active/"
    _assert_every_asset_loaded(page, nginx_url, stylesheets=3, scripts=2)
    assert browser.evaluate("getComputedStyle(document.getElementById('header')).backgroundColor") == (
        ADMIN_HEADER_BACKGROUND
    )


def test_the_api_docs_load_swagger_ui_from_this_origin_and_render_the_operations(browser, nginx_url, bypass):
    # when
    page = browser.load(f"{nginx_url}/api/docs", headers=bypass)
    # then Swagger UI came from our static files (the CSP would block a CDN) and drew the API
    _assert_every_asset_loaded(page, nginx_url, stylesheets=1, scripts=2)
    assert all(urlsplit(fetch.url).netloc == urlsplit(nginx_url).netloc for fetch in page.fetches)
    assert browser.evaluate("document.querySelectorAll('.swagger-ui .opblock').length") > 0


def test_a_stylesheet_or_script_that_does_not_load_is_reported(browser, nginx_url):
    # given a page naming assets the server does not have
    html = (
        f'<link rel="stylesheet" href="{nginx_url}/static/admin/css/no-such.css">'
        f'<script src="{nginx_url}/static/admin/js/no-such.js"></script>'
    )
    # when
    page = browser.load("data:text/html," + quote(html))
    # then both are broken, so the tests above would fail on a missing asset
    assert sorted(urlsplit(fetch.url).path for fetch in page.broken("Stylesheet", "Script")) == [
        "/static/admin/css/no-such.css",
        "/static/admin/js/no-such.js",
    ]
