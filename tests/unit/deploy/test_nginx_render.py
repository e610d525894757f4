"""The NGINX renderer: values from the environment, checked before they reach the file."""

import re

import pytest

from deploy.nginx.render import NginxConfigError, nginx_settings, nginx_values, render_nginx

pytestmark = pytest.mark.unit

TOKEN = "0123456789abcdef0123456789abcdef"


def test_app_servers_from_the_environment_become_upstream_lines_with_passive_health():
    # given
    environ = {
        "NGINX_APP_SERVERS": "10.0.0.1:8000, 10.0.0.2:8000",
        "NGINX_UPSTREAM_MAX_FAILS": "3",
        "NGINX_UPSTREAM_FAIL_TIMEOUT": "7s",
    }
    # when
    values = nginx_values(nginx_settings(environ))
    # then
    assert values["upstream_servers"].splitlines() == [
        "        server 10.0.0.1:8000 max_fails=3 fail_timeout=7s max_conns=32;",
        "        server 10.0.0.2:8000 max_fails=3 fail_timeout=7s max_conns=32;",
    ]


def test_each_app_server_takes_at_most_max_conns_requests_at_once():
    values = nginx_values(nginx_settings({"NGINX_UPSTREAM_MAX_CONNS": "48"}))
    assert values["upstream_servers"].endswith("max_conns=48;")
    # the WebSocket upstream holds long-lived connections: no cap there
    assert "max_conns" not in values["websocket_upstream_servers"]


def test_overrides_win_over_the_environment():
    settings = nginx_settings({"NGINX_HTTPS_PORT": "8443"}, https_port=9443)
    assert settings.https_port == 9443


@pytest.mark.parametrize("token", ["", "   "])
def test_without_a_token_no_header_value_bypasses_the_rate_limits(token):
    # when
    values = nginx_values(nginx_settings({"NGINX_RATELIMIT_BYPASS_TOKEN": token}))
    # then: the map keeps only its default (every client keyed by address), no '"" ""' entry
    assert '""' not in values["ratelimit_bypass_entry"]
    assert not re.search(r'^\s*"', values["ratelimit_bypass_entry"], re.MULTILINE)


def test_a_configured_token_maps_to_the_empty_key():
    values = nginx_values(nginx_settings({}, ratelimit_bypass_token=TOKEN))
    assert values["ratelimit_bypass_entry"].strip() == f'"{TOKEN}" "";'


@pytest.mark.parametrize("token", ["short", TOKEN + '" ""; default ""', "x" * 31])
def test_a_weak_or_malformed_token_is_refused(token):
    with pytest.raises(NginxConfigError, match="NGINX_RATELIMIT_BYPASS_TOKEN"):
        nginx_values(nginx_settings({}, ratelimit_bypass_token=token))


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        # a value that would change the configuration (a directive or a block of its own)
        ("NGINX_APP_SERVERS", "127.0.0.1:8000; } server { listen 81"),
        ("NGINX_WEBSOCKET_SERVERS", "no-port"),
        ("NGINX_INTERNAL_NETWORKS", "10.0.0.0/8,everyone"),
        ("NGINX_CLIENT_MAX_BODY_SIZE", "1m; client_max_body_size 0"),
        ("NGINX_TLS_CERT", "/etc/x.crt;"),
        ("NGINX_TLS_KEY", "/etc/x.key\nssl_verify_client off"),
        ("NGINX_CONTENT_SECURITY_POLICY", "default-src 'self'\" always; add_header X 1"),
        # the overload limits: a positive whole number
        *[
            (variable, value)
            for variable in ("NGINX_UPSTREAM_MAX_CONNS", "NGINX_OVERLOAD_RETRY_AFTER")
            for value in ("0", "-1", "many")
        ],
        # the admin switch: a yes or a no
        ("NGINX_ADMIN_INTERNAL_ONLY", "maybe"),
        # the WebSocket limits
        ("NGINX_WEBSOCKET_RATE", "fast"),
        ("NGINX_WEBSOCKET_IDLE_TIMEOUT", "forever"),
        ("NGINX_WEBSOCKET_CONNECTIONS", "0"),
        ("NGINX_WEBSOCKET_MAX_CONNECTIONS", "0"),
        ("NGINX_WEBSOCKET_MAX_BODY_SIZE", "big"),
    ],
)
def test_a_bad_value_is_refused_naming_its_variable(variable, value):
    with pytest.raises(NginxConfigError, match=variable):
        nginx_values(nginx_settings({variable: value}))


def test_internal_networks_become_allow_lines():
    values = nginx_values(nginx_settings({"NGINX_INTERNAL_NETWORKS": "10.1.2.3/8,::1"}))
    assert values["internal_allow"].splitlines() == ["allow 10.0.0.0/8;", "allow ::1/128;"]


@pytest.mark.parametrize(("port", "suffix"), [(443, ""), (28443, ":28443")])
def test_the_redirect_names_the_https_port_only_when_it_is_not_443(port, suffix):
    assert nginx_values(nginx_settings({}, https_port=port))["https_port_suffix"] == suffix


def test_rendering_fills_every_placeholder_of_every_file(tmp_path):
    # when
    conf = render_nginx(tmp_path, environ={}, ratelimit_bypass_token=TOKEN)
    # then
    rendered = sorted(path.name for path in tmp_path.iterdir())
    assert conf == tmp_path / "nginx.conf"
    assert "edge_security_headers.conf" in rendered
    for path in tmp_path.iterdir():
        assert "${" not in path.read_text(), path.name
    included = set(re.findall(r"include (\S+);", "".join(p.read_text() for p in tmp_path.iterdir())))
    assert included <= set(rendered)


def _admin_locations(conf: str) -> list[str]:
    return re.findall(r"location (?:= )?/admin/(?:login/)? \{.*?\n        \}", conf, re.DOTALL)


@pytest.mark.parametrize(
    ("environ", "internal"),
    [
        ({}, True),
        ({"NGINX_ADMIN_INTERNAL_ONLY": ""}, True),
        ({"NGINX_ADMIN_INTERNAL_ONLY": "1"}, True),
        ({"NGINX_ADMIN_INTERNAL_ONLY": "true"}, True),
        ({"NGINX_ADMIN_INTERNAL_ONLY": "0"}, False),
        ({"NGINX_ADMIN_INTERNAL_ONLY": "off"}, False),
    ],
    ids=["unset", "empty", "1", "true", "0", "off"],
)
def test_the_admin_answers_only_the_internal_networks_unless_switched_open(tmp_path, environ, internal):
    # when
    conf = render_nginx(tmp_path, environ).read_text()
    # then: both the login form and the rest of the admin, or neither
    locations = _admin_locations(conf)
    assert len(locations) == 2
    assert all(("include edge_internal_only.conf;" in location) is internal for location in locations)
    assert "limit_req zone=auth" in locations[0]


def test_the_redirect_names_the_first_configured_host_never_the_request_s(tmp_path):
    # when
    conf = render_nginx(tmp_path, {"NGINX_SERVER_NAME": "sms.example.org www.sms.example.org"}).read_text()
    # then
    assert "return 301 https://sms.example.org$request_uri;" in conf
    assert "https://$host" not in conf
    # and hosts it does not serve go to the default servers
    assert "listen 0.0.0.0:80 default_server;" in conf
    assert "return 444;" in conf
    assert "listen 0.0.0.0:443 ssl http2 default_server;" in conf
    assert "return 421 " in conf


@pytest.mark.parametrize("name", ["_", "*.example.org", "~^(.+)$", "", "a b;c"])
def test_a_catch_all_or_pattern_server_name_is_refused(name):
    with pytest.raises(NginxConfigError, match="NGINX_SERVER_NAME"):
        nginx_values(nginx_settings({"NGINX_SERVER_NAME": name}))


def test_websocket_locations_have_a_connection_and_a_request_limit_and_an_idle_timeout(tmp_path):
    # when
    environ = {"NGINX_WEBSOCKET_CONNECTIONS": "7", "NGINX_WEBSOCKET_IDLE_TIMEOUT": "90s"}
    render_nginx(tmp_path, environ)
    conf = (tmp_path / "nginx.conf").read_text()
    websocket = (tmp_path / "edge_websocket.conf").read_text()
    # then
    location = conf.split("location /socket.io/ {")[1].split("}")[0]
    assert "limit_conn websocket_conn 7;" in location
    assert "limit_req zone=websocket burst=20 nodelay;" in location
    assert "limit_conn websocket_total 10000;" in websocket
    assert "client_max_body_size 16k;" in websocket
    assert "location /ws/" not in conf  # nothing serves it
    assert "proxy_read_timeout 90s;" in websocket
    assert "proxy_send_timeout 90s;" in websocket
    assert "1h" not in websocket
