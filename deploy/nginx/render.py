"""Render the NGINX edge: ``nginx.conf`` and the ``edge_*.conf`` files it includes by name.

``render_deploy nginx --out DIR`` and the local cluster both call :func:`render_nginx`; the
cluster passes its loopback values as overrides, so both run the same templates. Every value
comes from an environment variable, with a default for one Debian host:

==========================  ==============================  ====================================
value                       variable                        default
==========================  ==============================  ====================================
server_name                 NGINX_SERVER_NAME               ``localhost``; the first name is the
                                                            one redirects go to, other hosts
                                                            get 444 (HTTP) or 421 (HTTPS)
listen_host                 NGINX_LISTEN_HOST               ``0.0.0.0``
http_port, https_port       NGINX_HTTP_PORT, _HTTPS_PORT    80, 443
tls_cert, tls_key           NGINX_TLS_CERT, NGINX_TLS_KEY   ``/etc/nginx/tls/edge.crt``, ``.key``
app_servers                 NGINX_APP_SERVERS               ``127.0.0.1:8000`` (comma-separated)
websocket_servers           NGINX_WEBSOCKET_SERVERS         ``127.0.0.1:8001`` (comma-separated; the
                                                            live-update servers, ``live_server``)
internal_networks           NGINX_INTERNAL_NETWORKS         loopback and the private ranges
client_max_body_size        NGINX_CLIENT_MAX_BODY_SIZE      ``1m``
ratelimit_bypass_token      NGINX_RATELIMIT_BYPASS_TOKEN    empty: nobody bypasses (ADR 0006)
content_security_policy     NGINX_CONTENT_SECURITY_POLICY   same-origin everything
state_dir, log_dir          NGINX_STATE_DIR, NGINX_LOG_DIR  ``/var/lib/nginx``, ``/var/log/nginx``
upstream_max_fails          NGINX_UPSTREAM_MAX_FAILS        2
upstream_fail_timeout       NGINX_UPSTREAM_FAIL_TIMEOUT     ``5s``
upstream_max_conns          NGINX_UPSTREAM_MAX_CONNS        32 requests in flight per app server
overload_retry_after        NGINX_OVERLOAD_RETRY_AFTER      1 (seconds, in the overload 503)
next_upstream_tries         NGINX_NEXT_UPSTREAM_TRIES       3
admin_internal_only         NGINX_ADMIN_INTERNAL_ONLY       true: ``/admin/`` answers only
                                                            ``internal_networks``; ``0`` opens it
websocket_rate              NGINX_WEBSOCKET_RATE            ``10r/s`` new /socket.io/
                                                            requests per client (burst 20)
websocket_connections       NGINX_WEBSOCKET_CONNECTIONS     20 open at once per client
websocket_idle_timeout      NGINX_WEBSOCKET_IDLE_TIMEOUT    ``120s`` without a frame: closed
websocket_max_connections   NGINX_WEBSOCKET_MAX_CONNECTIONS 10000 open in all on this edge
websocket_max_body_size     NGINX_WEBSOCKET_MAX_BODY_SIZE   ``16k``
acme_webroot                NGINX_ACME_WEBROOT              ``/var/lib/letsencrypt/webroot``: where
                                                            certbot --webroot writes its tokens
acme_renewer                NGINX_ACME_RENEWER              empty: this edge renews; else the
                                                            renewing edge's ``host:port`` (HTTP),
                                                            asked for tokens this edge lacks
==========================  ==============================  ====================================

Values are checked before they reach the file (a stray ``;`` or quote would change the
configuration's meaning), and a bad one raises :class:`NginxConfigError` naming its variable.
"""

import dataclasses
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from deploy.render import render_file

TEMPLATE_DIR = Path(__file__).resolve().parent
TEMPLATES = (
    "nginx.conf",
    "edge_tls.conf",
    "edge_security_headers.conf",
    "edge_proxy_headers.conf",
    "edge_proxy.conf",
    "edge_websocket.conf",
    "edge_internal_only.conf",
)

INTERNAL_NETWORKS = (
    "127.0.0.0/8",
    "::1/128",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "fc00::/7",
)
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'self'"
)
# The header a trusted load generator sends with the configured token (ADR 0006).
RATELIMIT_BYPASS_HEADER = "X-RateLimit-Bypass"

_WORD = re.compile(r"^[^\s;{}'\"\\#$]+$")
_ADDRESS = re.compile(r"^(unix:/[^\s;{}'\"\\#$]+|[A-Za-z0-9.\-]+:\d{1,5}|\[[0-9A-Fa-f:]+\]:\d{1,5})$")
_SIZE = re.compile(r"^\d+[kKmMgG]?$")
_DURATION = re.compile(r"^\d+(ms|s|m|h)?$")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32,128}$")
_RATE = re.compile(r"^\d+r/[sm]$")
# A concrete host name: no "_" catch-all, no wildcard or regex, so a redirect can name it.
_HOST = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


class NginxConfigError(ValueError):
    """A value would make a wrong or unsafe NGINX configuration; the message names its variable."""


@dataclass(frozen=True)
class NginxSettings:
    server_name: str = "localhost"
    listen_host: str = "0.0.0.0"  # noqa: S104 - the edge listens on every interface
    http_port: int = 80
    https_port: int = 443
    tls_cert: str = "/etc/nginx/tls/edge.crt"
    tls_key: str = "/etc/nginx/tls/edge.key"
    app_servers: tuple[str, ...] = ("127.0.0.1:8000",)
    websocket_servers: tuple[str, ...] = ("127.0.0.1:8001",)
    internal_networks: tuple[str, ...] = INTERNAL_NETWORKS
    client_max_body_size: str = "1m"
    ratelimit_bypass_token: str = ""
    content_security_policy: str = CONTENT_SECURITY_POLICY
    state_dir: str = "/var/lib/nginx"
    log_dir: str = "/var/log/nginx"
    upstream_max_fails: int = 2
    upstream_fail_timeout: str = "5s"
    # Requests in flight per app server. When every server has this many, NGINX answers a quick
    # JSON 503 with Retry-After instead of queueing into full backlogs (ADR 0014). Size it to
    # what a server finishes within a second or two: gunicorn workers x threads, times ~2.
    upstream_max_conns: int = 32
    overload_retry_after: int = 1
    next_upstream_tries: int = 3
    # /admin/ (login form included) answers only NGINX_INTERNAL_NETWORKS, like /metrics: a
    # password-only admin stays off the internet unless the operator switches it on (=0).
    admin_internal_only: bool = True
    websocket_rate: str = "10r/s"
    websocket_burst: int = 20
    websocket_connections: int = 20
    websocket_idle_timeout: str = "120s"
    websocket_max_connections: int = 10000
    websocket_max_body_size: str = "16k"
    acme_webroot: str = "/var/lib/letsencrypt/webroot"
    # With an edge pair one edge renews (deploy/certs/); the other sends the CA's challenge
    # requests it cannot answer to it, so validation works whichever edge holds the address.
    acme_renewer: str = ""


def variable_name(field: str) -> str:
    return f"NGINX_{field.upper()}"


def _coerce(field: dataclasses.Field[object], value: object) -> object:
    name = variable_name(field.name)
    if field.type is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text not in ("1", "true", "yes", "on", "0", "false", "no", "off", ""):
            raise NginxConfigError(f"{name}={value!r} is not true or false")
        if not text:  # an empty variable keeps the safe default; only an explicit value changes it
            return field.default
        return text in ("1", "true", "yes", "on")
    if field.type is int:
        try:
            return int(value)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            raise NginxConfigError(f"{name}={value!r} is not a number") from None
    if isinstance(field.default, tuple):
        parts = value.split(",") if isinstance(value, str) else value
        return tuple(str(part).strip() for part in parts if str(part).strip())  # type: ignore[attr-defined]
    return str(value).strip()


def nginx_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> NginxSettings:
    """Settings from the environment (``NGINX_<FIELD>``), then ``overrides`` by field name."""
    environ = os.environ if environ is None else environ
    fields = {field.name: field for field in dataclasses.fields(NginxSettings)}
    unknown = set(overrides) - set(fields)
    if unknown:
        raise TypeError(f"unknown NGINX settings: {', '.join(sorted(unknown))}")
    values: dict[str, object] = {}
    for name, field in fields.items():
        if name in overrides:
            values[name] = _coerce(field, overrides[name])
        elif variable_name(name) in environ:
            values[name] = _coerce(field, environ[variable_name(name)])
    return NginxSettings(**values)  # type: ignore[arg-type]


def _check(field: str, value: str, pattern: re.Pattern[str], what: str) -> str:
    if not pattern.fullmatch(value):
        raise NginxConfigError(f"{variable_name(field)}={value!r} is not {what}")
    return value


def _port(field: str, value: int) -> int:
    if not 0 < value < 65536:
        raise NginxConfigError(f"{variable_name(field)}={value!r} is not a port number")
    return value


def _servers(field: str, addresses: tuple[str, ...], params: str) -> str:
    if not addresses:
        raise NginxConfigError(f"{variable_name(field)} names no server")
    lines = [_check(field, address, _ADDRESS, "host:port or unix:/path") for address in addresses]
    return "\n".join(f"        server {address}{params};" for address in lines)


def _networks(field: str, networks: tuple[str, ...]) -> str:
    lines = []
    for network in networks:
        try:
            lines.append(f"allow {ipaddress.ip_network(network, strict=False)};")
        except ValueError:
            raise NginxConfigError(f"{variable_name(field)}: {network!r} is not an address or CIDR") from None
    # With no network listed, the operator endpoints answer nobody.
    return "\n".join(lines)


def _bypass_entry(token: str) -> str:
    # An empty token must never exempt anyone: a request without the header has the value "".
    if not token:
        return "        # no NGINX_RATELIMIT_BYPASS_TOKEN configured: every client is limited"
    _check("ratelimit_bypass_token", token, _TOKEN, "32 to 128 characters of A-Z a-z 0-9 _ -")
    return f'        "{token}" "";'


def nginx_values(settings: NginxSettings) -> dict[str, str]:
    """Every placeholder of the templates, checked and formatted."""
    s = settings
    if not s.content_security_policy or re.search(r"[\"\\\n\r$]", s.content_security_policy):
        raise NginxConfigError(f'{variable_name("content_security_policy")} is empty or has " \\ $')
    if s.next_upstream_tries < 1:
        raise NginxConfigError(f"{variable_name('next_upstream_tries')} must be at least 1")
    if s.upstream_max_fails < 1:
        raise NginxConfigError(f"{variable_name('upstream_max_fails')} must be at least 1")
    fail_timeout = _check("upstream_fail_timeout", s.upstream_fail_timeout, _DURATION, "a duration like 5s")
    if s.upstream_max_conns < 1:
        raise NginxConfigError(f"{variable_name('upstream_max_conns')} must be at least 1")
    if s.overload_retry_after < 1:
        raise NginxConfigError(f"{variable_name('overload_retry_after')} must be at least 1")
    https_port = _port("https_port", s.https_port)
    names = s.server_name.split()
    if not names:
        raise NginxConfigError(f"{variable_name('server_name')} is empty: name the host this edge serves")
    for field, minimum in (
        ("websocket_burst", 0),
        ("websocket_connections", 1),
        ("websocket_max_connections", 1),
    ):
        if getattr(s, field) < minimum:
            raise NginxConfigError(f"{variable_name(field)} must be at least {minimum}")
    return {
        "server_name": " ".join(
            _check("server_name", name, _HOST, "a host name (no _ or wildcard)") for name in names
        ),
        "canonical_host": names[0],
        "websocket_rate": _check("websocket_rate", s.websocket_rate, _RATE, "a rate like 10r/s"),
        "websocket_burst": str(s.websocket_burst),
        "websocket_connections": str(s.websocket_connections),
        "websocket_idle_timeout": _check(
            "websocket_idle_timeout", s.websocket_idle_timeout, _DURATION, "a duration like 120s"
        ),
        "listen_host": _check("listen_host", s.listen_host, _WORD, "an address"),
        "http_port": str(_port("http_port", s.http_port)),
        "https_port": str(https_port),
        "https_port_suffix": "" if https_port == 443 else f":{https_port}",
        "tls_cert": _check("tls_cert", s.tls_cert, _WORD, "a path"),
        "tls_key": _check("tls_key", s.tls_key, _WORD, "a path"),
        "upstream_servers": _servers(
            "app_servers",
            s.app_servers,
            f" max_fails={s.upstream_max_fails} fail_timeout={fail_timeout} max_conns={s.upstream_max_conns}",
        ),
        "overload_retry_after": str(s.overload_retry_after),
        "websocket_upstream_servers": _servers(
            "websocket_servers",
            s.websocket_servers,
            f" max_fails={s.upstream_max_fails} fail_timeout={fail_timeout}",
        ),
        "internal_allow": _networks("internal_networks", s.internal_networks),
        "client_max_body_size": _check(
            "client_max_body_size", s.client_max_body_size, _SIZE, "a size like 1m"
        ),
        "ratelimit_bypass_entry": _bypass_entry(s.ratelimit_bypass_token),
        "content_security_policy": s.content_security_policy,
        "state_dir": _check("state_dir", s.state_dir, _WORD, "a path"),
        "log_dir": _check("log_dir", s.log_dir, _WORD, "a path"),
        "next_upstream_tries": str(s.next_upstream_tries),
        "admin_access": (
            "            include edge_internal_only.conf;"
            if s.admin_internal_only
            else "            # NGINX_ADMIN_INTERNAL_ONLY=0: the admin answers every address"
        ),
        "websocket_max_body_size": _check(
            "websocket_max_body_size", s.websocket_max_body_size, _SIZE, "a size like 16k"
        ),
        "websocket_max_connections": str(s.websocket_max_connections),
        **_acme_values(s),
    }


def _acme_values(s: NginxSettings) -> dict[str, str]:
    webroot = _check("acme_webroot", s.acme_webroot, _WORD, "a path")
    if not s.acme_renewer:
        return {
            "acme_webroot": webroot,
            "acme_missing": "=404",
            "acme_renewer_location": "",
            "acme_renewer_note": "",
        }
    renewer = _check("acme_renewer", s.acme_renewer, _ADDRESS, "host:port")
    location = (
        "        location @acme_renewer {\n"
        f"            proxy_pass http://{renewer};\n"
        "            proxy_set_header Host $host;\n"
        "        }\n"
    )
    note = f", or from the renewing edge ({renewer}) when this edge has none"
    return {
        "acme_webroot": webroot,
        "acme_missing": "@acme_renewer",
        "acme_renewer_location": location,
        "acme_renewer_note": note,
    }


def render_nginx(out_dir: Path, environ: Mapping[str, str] | None = None, **overrides: object) -> Path:
    """Write ``nginx.conf`` and its includes into ``out_dir``; return the ``nginx.conf`` path."""
    values = nginx_values(nginx_settings(environ, **overrides))
    for name in TEMPLATES:
        render_file(TEMPLATE_DIR / f"{name}.template", values, out_dir / name)
    return out_dir / "nginx.conf"
