"""The certificate kit's static parts (issue 22): the renewal unit and timer, the edge's ACME
location, the cert-manager Issuer and Certificate, and the alert 14 days before the end. Issue
and renewal themselves run against pebble in tests/integration/deploy/test_acme_certificates.py."""

import configparser
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from deploy.nginx.render import NginxConfigError, nginx_settings, render_nginx
from tests.programs import require_program
from tests.unit.deploy.k8s_build import render_and_build

pytestmark = pytest.mark.unit

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
CERTS = DEPLOY / "certs"


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(CERTS / name)
    return parser


def test_the_renewal_unit_and_timer_pass_systemd_analyze_verify():
    require_program("certbot", "certbot")  # verify checks that ExecStart's program exists
    result = subprocess.run(
        [require_program("systemd-analyze", "systemd"), "verify",
         str(CERTS / "app-cert-renew.service"), str(CERTS / "app-cert-renew.timer")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_certbot_renews_twice_a_day_with_the_deploy_hook():
    service, timer = _unit("app-cert-renew.service"), _unit("app-cert-renew.timer")
    command = service["Service"]["ExecStart"].split()
    assert command[:2] == ["/usr/bin/certbot", "renew"]
    assert command[command.index("--deploy-hook") + 1] == "/usr/local/lib/app/cert-deploy-hook.sh"
    assert timer["Timer"]["OnCalendar"] == "*-*-* 00,12:00:00"
    assert timer["Timer"]["Persistent"] == "true"


def test_the_deploy_hook_is_valid_shell():
    assert (
        subprocess.run(["sh", "-n", str(CERTS / "deploy-hook.sh")], timeout=30, check=False).returncode == 0
    )


def _http_server(conf: str) -> str:
    match = re.search(r"server \{\n\s+listen \S+:80;\n.*?\n    \}\n", conf, re.DOTALL)
    assert match, "no HTTP server for the site"
    return match.group(0)


def test_the_edge_answers_acme_challenges_over_http_and_redirects_the_rest(tmp_path):
    conf = render_nginx(tmp_path, {"NGINX_SERVER_NAME": "sms.example.org"}).read_text()
    server = _http_server(conf)
    assert "location ^~ /.well-known/acme-challenge/ {" in server
    assert "root /var/lib/letsencrypt/webroot;" in server
    assert "try_files $uri =404;" in server
    assert "return 301 https://sms.example.org$request_uri;" in server


def test_the_other_edge_of_a_pair_asks_the_renewer_for_a_token_it_lacks(tmp_path):
    environ = {"NGINX_SERVER_NAME": "sms.example.org", "NGINX_ACME_RENEWER": "10.0.0.5:80"}
    server = _http_server(render_nginx(tmp_path, environ).read_text())
    assert "try_files $uri @acme_renewer;" in server
    assert "proxy_pass http://10.0.0.5:80;" in server


@pytest.mark.parametrize("renewer", ["10.0.0.5", "10.0.0.5:80; return 200", "http://10.0.0.5:80"])
def test_a_renewer_that_is_not_host_and_port_is_refused(renewer):
    from deploy.nginx.render import nginx_values

    with pytest.raises(NginxConfigError, match="NGINX_ACME_RENEWER"):
        nginx_values(nginx_settings({"NGINX_ACME_RENEWER": renewer}))


def test_cert_manager_issues_the_secret_every_ingress_names_for_its_host(tmp_path):
    built = render_and_build(tmp_path)
    certificate = built[("Certificate", "app-tls")]["spec"]
    issuer = built[("Issuer", certificate["issuerRef"]["name"])]["spec"]["acme"]
    assert issuer["server"] == "https://acme-v02.api.letsencrypt.org/directory"
    assert issuer["solvers"] == [{"http01": {"ingress": {"ingressClassName": "nginx"}}}]
    for (kind, name), ingress in built.items():
        if kind == "Ingress":
            (tls,) = ingress["spec"]["tls"]
            assert tls["secretName"] == certificate["secretName"], name
            assert tls["hosts"] == certificate["dnsNames"], name
    # renewed 30 days ahead, as on the VMs; the alert comes at 14
    assert certificate["renewBefore"] == "720h"
    # the solver pod answers the controller's pods only, through the default deny
    (rule,) = built[("NetworkPolicy", "acme-http01-solver")]["spec"]["ingress"]
    (peer,) = rule["from"]
    assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "controller"


def test_an_alert_fires_with_under_14_days_left_on_both_sources():
    rules = yaml.safe_load((DEPLOY / "monitoring" / "alerts.yml").read_text())
    (alert,) = [
        rule
        for group in rules["groups"]
        for rule in group["rules"]
        if rule["alert"] == "CertificateExpiresSoon"
    ]
    assert alert["expr"].count("< 14 * 86400") == 2
    assert "edge_tls_certificate_not_after_seconds" in alert["expr"]  # the deploy hook's, on VMs
    assert "certmanager_certificate_expiration_timestamp_seconds" in alert["expr"]  # Kubernetes
    assert alert["annotations"]["runbook_url"].endswith(
        "docs/runbooks/certificates.md#the-certificate-expires-soon"
    )
    hook = (CERTS / "deploy-hook.sh").read_text()
    assert "edge_tls_certificate_not_after_seconds" in hook
