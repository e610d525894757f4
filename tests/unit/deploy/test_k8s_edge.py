"""The Kubernetes edge (ingress-nginx) keeps the promises of deploy/nginx/: the same rate-limit
zones, TLS policy, headers and operator-path denies, on the built overlay."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deploy.nginx.render import render_nginx

pytestmark = pytest.mark.unit

K8S = Path(__file__).resolve().parents[3] / "deploy" / "k8s"
INGRESS_NGINX = K8S / "ingress-nginx"
PREFIX = "nginx.ingress.kubernetes.io/"


def _kustomize(folder: Path) -> list[dict]:
    kubectl = Path(sys.executable).parent / "kubectl"
    output = subprocess.run(
        [str(kubectl), "kustomize", str(folder)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return [document for document in yaml.safe_load_all(output) if document]


@pytest.fixture(scope="module")
def ingresses() -> dict[str, dict]:
    built = _kustomize(K8S / "overlays" / "example")
    return {doc["metadata"]["name"]: doc for doc in built if doc["kind"] == "Ingress"}


@pytest.fixture(scope="module")
def controller() -> dict[str, dict]:
    """The controller's ConfigMaps by name (its PodDisruptionBudget shares the controller's name)."""
    return {doc["metadata"]["name"]: doc for doc in _kustomize(INGRESS_NGINX) if doc["kind"] == "ConfigMap"}


@pytest.fixture(scope="module")
def nginx(tmp_path_factory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("nginx")
    render_nginx(out, {"NGINX_SERVER_NAME": "sms.example.org"})
    return {path.name: path.read_text() for path in out.iterdir()}


def _paths(ingress: dict) -> set[str]:
    return {path["path"] for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]}


def _nginx_zone(conf: str, zone: str) -> tuple[int, int]:
    rate = re.search(rf"zone={zone}:\S+ rate=(\d+)r/s;", conf)
    burst = re.search(rf"limit_req zone={zone} burst=(\d+) nodelay;", conf)
    assert rate and burst, zone
    return int(rate.group(1)), int(burst.group(1))


def test_the_ingress_nginx_kustomization_lists_every_file_of_its_folder():
    kustomization = yaml.safe_load((INGRESS_NGINX / "kustomization.yaml").read_text())
    # controller-ha.patch.yaml patches the installed controller with kubectl patch, outside kustomize
    # (test_k8s_high_availability.py applies it); every other file is a resource here.
    present = {
        path.name
        for path in INGRESS_NGINX.iterdir()
        if path.name != "kustomization.yaml" and not path.name.endswith(".patch.yaml")
    }
    assert set(kustomization["resources"]) == present
    assert (INGRESS_NGINX / "controller-ha.patch.yaml").is_file()
    assert kustomization["namespace"] == "ingress-nginx"


def test_every_ingress_is_tls_only_for_the_overlays_host(ingresses):
    assert set(ingresses) == {
        "web",
        "web-auth",
        "web-admin-login",
        "web-admin",
        "web-webhooks",
        "web-api",
        "web-websocket",
        "web-internal-only",
    }
    for name, ingress in ingresses.items():
        spec = ingress["spec"]
        assert spec["ingressClassName"] == "nginx", name
        assert spec["tls"] == [{"hosts": ["sms.example.org"], "secretName": "sms-example-org-tls"}], name
        assert {rule["host"] for rule in spec["rules"]} == {"sms.example.org"}, name
        assert ingress["metadata"]["annotations"][PREFIX + "force-ssl-redirect"] == "true", name


@pytest.mark.parametrize(
    ("ingress", "zone", "paths"),
    [
        ("web-auth", "auth", {"/auth/"}),
        ("web-admin-login", "auth", {"/admin/login/"}),
        ("web-webhooks", "webhooks", {"/webhooks/"}),
        ("web-api", "api", {"/api/"}),
        ("web-websocket", "websocket", {"/socket.io/"}),
    ],
)
def test_the_rate_limit_zones_are_the_vm_edges(ingresses, nginx, ingress, zone, paths):
    # given: the VM edge's zone (rate and burst) from the same renderer the VMs use
    rate, burst = _nginx_zone(nginx["nginx.conf"], zone)
    annotations = ingresses[ingress]["metadata"]["annotations"]
    # then: ingress-nginx's burst is rate x multiplier
    assert int(annotations[PREFIX + "limit-rps"]) == rate
    assert (
        int(annotations[PREFIX + "limit-rps"]) * int(annotations[PREFIX + "limit-burst-multiplier"]) == burst
    )
    assert _paths(ingresses[ingress]) == paths


def test_websockets_have_the_vm_edges_connection_limit_and_idle_timeout(ingresses, nginx):
    annotations = ingresses["web-websocket"]["metadata"]["annotations"]
    connections = re.search(r"limit_conn websocket_conn (\d+);", nginx["nginx.conf"])
    idle = re.search(r"proxy_read_timeout (\d+)s;", nginx["edge_websocket.conf"])
    assert connections and idle
    assert annotations[PREFIX + "limit-connections"] == connections.group(1)
    body = re.search(r"client_max_body_size (\w+);", nginx["edge_websocket.conf"])
    assert body and annotations[PREFIX + "proxy-body-size"] == body.group(1)
    (rule,) = ingresses["web-websocket"]["spec"]["rules"]
    assert {path["backend"]["service"]["name"] for path in rule["http"]["paths"]} == {"live"}
    assert (
        annotations[PREFIX + "proxy-read-timeout"]
        == annotations[PREFIX + "proxy-send-timeout"]
        == idle.group(1)
    )


def test_the_operator_paths_answer_no_outside_address(ingresses, nginx):
    internal = ingresses["web-internal-only"]
    vm_internal = set(
        re.findall(r"location =? ?(\S+) \{\n\s+include edge_internal_only.conf;", nginx["nginx.conf"])
    )
    # the admin is internal-only by default on both edges (issue 22)
    assert vm_internal == {"/health/detailed", "/metrics", "/nginx_status", "/admin/"}
    assert vm_internal - {"/admin/"} <= _paths(internal)
    assert _paths(ingresses["web-admin"]) == {"/admin/"}
    for ingress in (internal, ingresses["web-admin"], ingresses["web-admin-login"]):
        annotations = ingress["metadata"]["annotations"]
        for key in ("whitelist-source-range", "allowlist-source-range"):
            assert (
                annotations[PREFIX + key] == "127.0.0.1/32"
            )  # no client comes from the controller's loopback


def test_the_controller_has_the_vm_edges_tls_policy_and_headers(controller, nginx):
    config = controller["ingress-nginx-controller"]["data"]
    tls = nginx["edge_tls.conf"]
    assert f"ssl_protocols {config['ssl-protocols']};" in tls
    assert f"ssl_ciphers {config['ssl-ciphers']};" in tls
    assert config["use-forwarded-headers"] == config["compute-full-forwarded-for"] == "false"
    assert config["limit-req-status-code"] == config["limit-conn-status-code"] == "429"
    assert config["allow-snippet-annotations"] == "false"
    assert config["hsts-max-age"] == "31536000"
    headers = controller["app-security-headers"]["data"]
    assert config["add-headers"] == "ingress-nginx/app-security-headers"
    for name, value in headers.items():
        assert f'add_header {name} "{value}" always;' in nginx["edge_security_headers.conf"] or (
            f"add_header {name} {value} always;" in nginx["edge_security_headers.conf"]
        ), name


def test_redis_takes_connections_only_from_the_apps_pods():
    # the policy lives in Redis's namespace (deploy/k8s/redis), where the Redis pods are
    (policy,) = _kustomize(K8S / "redis")
    assert (policy["kind"], policy["metadata"]["namespace"]) == ("NetworkPolicy", "data")
    rule, _replication_and_sentinel = policy["spec"]["ingress"]
    assert rule["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "app-example"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "app"}},
        }
    ]
    assert {port["port"] for port in rule["ports"]} == {6379, 6380, 26379}
    built = _kustomize(K8S / "overlays" / "example")
    config = next(
        doc for doc in built if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "app-config"
    )
    assert all(url.startswith("rediss://") for url in config["data"]["LOCK_REDIS_URLS"].split(","))
    assert config["data"]["BROKER_REDIS_URL"].startswith("rediss://")
