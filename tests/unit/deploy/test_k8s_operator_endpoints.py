"""On Kubernetes, the operator endpoints answer only their token and X-Forwarded-For is believed
only from the ingress controller's pods (issue 22, item 5): the rendered app-config, run under
the production settings, and the NetworkPolicies that let only the controller and Prometheus in."""

import json
import os
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from tests.support import REPO
from tests.unit.deploy.k8s_build import EXPORTER_IMAGE, IMAGE, PGBOUNCER_IMAGE, render_and_build
from tests.unit.production_env import REQUIRED

pytestmark = pytest.mark.unit

TOKEN = "monitoring-token-for-the-kubernetes-test"
CONTROLLER_POD = "10.244.250.7"  # inside the rendered DEPLOY_INGRESS_PROXIES pool
OTHER_POD = "10.3.4.5"  # any other pod of the cluster
SCRIPT = """
import json, sys
import django
django.setup()
from django.test import Client
out = []
for path, remote, forwarded, authorization in json.loads(sys.argv[1]):
    headers = {}
    if forwarded:
        headers["X-Forwarded-For"] = forwarded
    if authorization:
        headers["Authorization"] = authorization
    out.append(Client(REMOTE_ADDR=remote).get(path, secure=True, headers=headers).status_code)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return render_and_build(tmp_path_factory.mktemp("k8s"))


def _statuses_with_app_config(config: dict[str, str], cases: list[tuple[str, str, str, str]]) -> list[int]:
    """Each request's status under the production settings with the pods' app-config."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "MESSAGING_", "HEALTH_", "METRICS_"))
    }
    env = {
        **clean,
        **REQUIRED,
        **config,
        "HEALTH_DETAILED_TOKEN": TOKEN,
        "DJANGO_ALLOWED_HOSTS": "testserver",
    }
    # the database and Redis of this machine, not the ConfigMap's Service names
    for name in (
        "DB_HOST",
        "PGBOUNCER_PORT",
        "DB_REPLICA_HOST",
        "PG_REPLICA_PORT",
        "BROKER_REDIS_URL",
        "LOCK_REDIS_URLS",
    ):
        env.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(cases)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("path", ["/metrics", "/health/detailed"])
def test_a_pod_address_with_a_forged_forwarded_for_is_refused(built, path):
    config = built[("ConfigMap", "app-config")]["data"]
    cases = [
        # straight to the pod from another pod, claiming loopback
        (path, OTHER_POD, "127.0.0.1", ""),
        # through the controller, the client having put loopback to the left of its address
        (path, CONTROLLER_POD, "127.0.0.1, 8.8.8.8", ""),
        # through the controller, claiming loopback as its only hop
        (path, CONTROLLER_POD, "127.0.0.1", ""),
        # from the pod's own loopback: no address is internal in a cluster
        (path, "127.0.0.1", "", ""),
        (path, OTHER_POD, "", "Bearer not-the-token"),
    ]
    assert _statuses_with_app_config(config, cases) == [404] * len(cases)


def test_metrics_answer_the_token_from_any_pod(built):
    config = built[("ConfigMap", "app-config")]["data"]
    assert _statuses_with_app_config(config, [("/metrics", OTHER_POD, "", f"Bearer {TOKEN}")]) == [200]


def test_only_the_controllers_pool_is_a_trusted_proxy(built):
    config = built[("ConfigMap", "app-config")]["data"]
    assert config["HEALTH_TRUSTED_PROXIES"] == "10.244.250.0/26"
    assert config["HEALTH_DETAILED_ALLOWED_NETWORKS"] == config["METRICS_ALLOWED_NETWORKS"] == ""


@pytest.mark.parametrize("proxies", ["10.0.0.0/8", "10.244.0.0/16", "10.244.250.0/26,172.16.0.0/12", "pods"])
def test_a_whole_pod_network_is_refused_as_the_trusted_proxies(tmp_path, proxies):
    with (
        override_settings(
            DEPLOY_IMAGE=IMAGE,
            DEPLOY_PGBOUNCER_IMAGE=PGBOUNCER_IMAGE,
            DEPLOY_PGBOUNCER_EXPORTER_IMAGE=EXPORTER_IMAGE,
            DEPLOY_NAMESPACE="sms-prod",
            DEPLOY_INGRESS_PROXIES=proxies,
        ),
        pytest.raises(CommandError, match="DEPLOY_INGRESS_PROXIES"),
    ):
        call_command("render_deploy", "k8s", "--out", str(tmp_path))


@pytest.mark.parametrize(
    ("policy", "port"), [("web-ingress", 8000), ("live-ingress", 8001), ("metrics-ingress", 9100)]
)
def test_only_the_controllers_pods_and_prometheus_reach_the_app_ports(built, policy, port):
    (rule,) = built[("NetworkPolicy", policy)]["spec"]["ingress"]
    assert port in {entry["port"] for entry in rule["ports"]}
    peers = {
        (
            peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
            tuple(sorted(peer["podSelector"]["matchLabels"].items())),
        )
        for peer in rule["from"]
    }
    allowed = {
        (
            "ingress-nginx",
            (("app.kubernetes.io/component", "controller"), ("app.kubernetes.io/name", "ingress-nginx")),
        ),
        ("monitoring", (("app.kubernetes.io/name", "prometheus"),)),
    }
    # the metrics ports of the worker, beat and PgBouncer's exporter: Prometheus only
    assert peers == (allowed if policy != "metrics-ingress" else {p for p in allowed if p[0] == "monitoring"})
