"""Deployment templates fill ``${name}`` placeholders and leave NGINX's ``$variables`` alone."""

import pytest

from deploy.render import MissingTemplateValue, render_text

pytestmark = pytest.mark.unit


def test_placeholders_are_filled_and_nginx_variables_kept():
    text = "listen ${port}; return 301 https://$host$request_uri;"
    assert render_text(text, {"port": 443}) == "listen 443; return 301 https://$host$request_uri;"


def test_a_missing_value_is_an_error_naming_it():
    with pytest.raises(MissingTemplateValue, match="'tls_cert'"):
        render_text("ssl_certificate ${tls_cert};", {}, source="nginx.conf")
