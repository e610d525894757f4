"""The Kubernetes kit has no single point of failure in front of the data (issue 20, part 5): the
database through CloudNativePG's role-following Services (or a managed database's), the broker
as one failover endpoint, the ingress controller twice with a disruption budget and
anti-affinity. Rendered with ``render_deploy k8s`` and built offline."""

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import redis
import yaml

from tests.unit.deploy.k8s_build import build, render_and_build

pytestmark = pytest.mark.unit

KUBERNETES_VERSION = "1.30"
APP_NAMESPACE = "sms-prod"
# The controller's pods as the official manifests and the Helm chart label them.
CONTROLLER_LABELS = {
    "app.kubernetes.io/name": "ingress-nginx",
    "app.kubernetes.io/instance": "ingress-nginx",
    "app.kubernetes.io/component": "controller",
}
# What the official ingress-nginx Deployment looks like before the patch (the fields it matters for).
INSTALLED_CONTROLLER = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {
        "name": "ingress-nginx-controller",
        "namespace": "ingress-nginx",
        "labels": CONTROLLER_LABELS,
    },
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": CONTROLLER_LABELS},
        "template": {
            "metadata": {"labels": CONTROLLER_LABELS},
            "spec": {
                "nodeSelector": {"kubernetes.io/os": "linux"},
                "containers": [{"name": "controller", "image": "registry.k8s.io/ingress-nginx/controller"}],
            },
        },
    },
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> tuple[Path, dict[tuple[str, str], dict]]:
    out = tmp_path_factory.mktemp("k8s")
    return out, render_and_build(out, DEPLOY_NAMESPACE=APP_NAMESPACE)


def _selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(key) == value for key, value in selector.get("matchLabels", {}).items())


def _pod_labels(built: dict, name: str) -> dict:
    return built[("Deployment", name)]["spec"]["template"]["metadata"]["labels"]


def _admitted(built: dict, *, to: dict, source: dict, port: int) -> bool:
    """Whether some ingress NetworkPolicy of the namespace lets a pod labelled ``source`` (same
    namespace) reach ``port`` on a pod labelled ``to``."""
    for (kind, _), policy in built.items():
        if kind != "NetworkPolicy" or not _selects(policy["spec"]["podSelector"], to):
            continue
        for rule in policy["spec"].get("ingress", []):
            ports = {entry["port"] for entry in rule.get("ports", [])}
            peers = [peer for peer in rule.get("from", []) if "namespaceSelector" not in peer]
            if port in ports and any(_selects(peer["podSelector"], source) for peer in peers):
                return True
    return False


def _egress_allowed(built: dict, *, source: dict, to: dict, port: int) -> bool:
    """Whether some egress NetworkPolicy lets ``source`` reach ``port`` on ``to`` (same namespace)."""
    for (kind, _), policy in built.items():
        if kind != "NetworkPolicy" or not _selects(policy["spec"]["podSelector"], source):
            continue
        for rule in policy["spec"].get("egress", []):
            if port not in {entry["port"] for entry in rule.get("ports", [])}:
                continue
            peers = rule.get("to")
            if not peers or any("podSelector" in p and _selects(p["podSelector"], to) for p in peers):
                return True
    return False


def _pgbouncer_databases(built: dict) -> dict[str, str]:
    (config,) = [resource for (kind, name), resource in built.items() if name.startswith("pgbouncer-config")]
    parser = configparser.ConfigParser(comment_prefixes=(";",), interpolation=None)
    parser.read_string(config["data"]["pgbouncer.ini"])
    return dict(parser["databases"])


def test_the_database_is_a_cloudnative_pg_cluster_of_two_with_synchronous_replication(rendered):
    # given
    _, built = rendered
    (cluster,) = [resource for (kind, _), resource in built.items() if kind == "Cluster"]
    spec = cluster["spec"]
    # then: a primary and a replica on different nodes
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
    assert spec["instances"] >= 2
    assert (spec["affinity"]["podAntiAffinityType"], spec["affinity"]["topologyKey"]) == (
        "required",
        "kubernetes.io/hostname",
    )
    # a commit waits for one replica; a lone primary keeps writing (non-strict, as on VMs)
    synchronous = spec["postgresql"]["synchronous"]
    assert synchronous["method"] in ("any", "first") and synchronous["number"] == 1
    assert synchronous["dataDurability"] == "preferred"
    assert synchronous["number"] < spec["instances"]
    # the app's database and role, checksums on (pg_rewind can rejoin the old primary)
    initdb = spec["bootstrap"]["initdb"]
    config = built[("ConfigMap", "app-config")]["data"]
    assert (initdb["database"], initdb["owner"]) == (config["DB_NAME"], config["DB_USER"])
    assert initdb["dataChecksums"] is True


def test_pgbouncer_and_the_read_alias_use_the_operators_role_following_services(rendered):
    # given
    _, built = rendered
    (cluster,) = [resource for (kind, _), resource in built.items() if kind == "Cluster"]
    name = cluster["metadata"]["name"]
    config = built[("ConfigMap", "app-config")]["data"]
    databases = _pgbouncer_databases(built)
    # then: writes to the read-write Service (the primary, whichever instance it is now), the
    # replica pool and the app's read alias to the read-only one (the replicas)
    assert f"host={name}-rw " in databases[config["DB_NAME"]]
    assert f"host={name}-ro " in databases[f"{config['DB_NAME']}_replica"]
    assert config["DB_REPLICA_HOST"] == f"{name}-ro"
    assert config["DB_HOST"] == "pgbouncer"
    # the operator makes those Services: the kit does not shadow them with its own
    assert not [key for key in built if key[0] == "Service" and key[1].startswith(f"{name}-")]


def test_the_database_pods_take_only_pgbouncer_the_app_and_each_other(rendered):
    # given
    _, built = rendered
    (cluster,) = [resource for (kind, _), resource in built.items() if kind == "Cluster"]
    instance = {"cnpg.io/cluster": cluster["metadata"]["name"], "cnpg.io/instanceRole": "primary"}
    other_instance = {**instance, "cnpg.io/instanceRole": "replica"}
    # then: under the namespace's default deny, the clients and the other instance get in
    assert ("NetworkPolicy", "default-deny-ingress") in built
    assert _admitted(built, to=instance, source=_pod_labels(built, "pgbouncer"), port=5432)
    assert _admitted(built, to=instance, source=_pod_labels(built, "web"), port=5432)
    assert _admitted(built, to=instance, source=other_instance, port=5432)
    assert _egress_allowed(built, source=other_instance, to=instance, port=5432)
    assert _egress_allowed(built, source=_pod_labels(built, "pgbouncer"), to=instance, port=5432)
    # the operator reads each instance's status port to choose whom to promote
    operator_rules = [
        rule
        for rule in built[("NetworkPolicy", "postgres-ingress")]["spec"]["ingress"]
        for peer in rule["from"]
        if peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
        == "cnpg-system"
    ]
    assert {entry["port"] for rule in operator_rules for entry in rule["ports"]} == {8000, 5432}
    # and nothing else in the namespace does
    assert not _admitted(built, to=instance, source={"app.kubernetes.io/name": "other"}, port=5432)


def test_a_managed_database_takes_the_same_service_names(rendered, tmp_path):
    # given: the rendered kit with the overlay switched to the managed database, as the README says
    out, _ = rendered
    copy = tmp_path / "k8s"
    shutil.copytree(out, copy)
    kustomization_file = copy / "overlays" / "example" / "kustomization.yaml"
    kustomization = yaml.safe_load(kustomization_file.read_text())
    resources = kustomization["resources"]
    kustomization["resources"] = [
        "../../managed-database" if entry == "../../postgres" else entry for entry in resources
    ]
    kustomization_file.write_text(yaml.safe_dump(kustomization))
    # when
    built = build(copy / "overlays" / "example")
    # then: no operator resources, and the names PgBouncer and the read alias use exist
    assert not [key for key in built if key[0] == "Cluster"]
    services = {name: resource["spec"] for (kind, name), resource in built.items() if kind == "Service"}
    hosts = {value.split("host=")[1].split()[0] for value in _pgbouncer_databases(built).values()}
    assert hosts == {"postgres-rw", "postgres-ro"}
    for host in hosts:
        assert services[host]["type"] == "ExternalName" and services[host]["externalName"]
        kubernetes_validate.validate(built[("Service", host)], KUBERNETES_VERSION, strict=True)


def test_the_ingress_controller_runs_twice_on_different_nodes_with_a_budget(rendered, tmp_path):
    # given: the controller as installed, and the kit's patch and budget for it
    out, _ = rendered
    installed = tmp_path / "controller.yaml"
    installed.write_text(yaml.safe_dump(INSTALLED_CONTROLLER))
    patch = out / "ingress-nginx" / "controller-ha.patch.yaml"
    kubectl = Path(sys.executable).parent / "kubectl"
    offline = ["--local", "-o", "yaml"]
    # when: the patch as the runbook applies it, here offline
    patched = yaml.safe_load(
        subprocess.run(
            [
                str(kubectl),
                "patch",
                "-f",
                str(installed),
                "--type",
                "strategic",
                "--patch-file",
                str(patch),
                *offline,
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
    )
    # then: a valid Deployment whose installed settings survive the patch
    kubernetes_validate.validate(patched, KUBERNETES_VERSION, strict=True)
    spec = patched["spec"]
    assert spec["template"]["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert spec["replicas"] >= 2
    # two controllers never share a node
    pod_labels = spec["template"]["metadata"]["labels"]
    anti_affinity = spec["template"]["spec"]["affinity"]["podAntiAffinity"]
    (rule,) = anti_affinity["requiredDuringSchedulingIgnoredDuringExecution"]
    assert rule["topologyKey"] == "kubernetes.io/hostname"
    assert _selects(rule["labelSelector"], pod_labels)
    # a drain or an upgrade keeps one and can still move the other
    budgets = [
        resource
        for resource in build(out / "ingress-nginx").values()
        if resource["kind"] == "PodDisruptionBudget"
    ]
    (budget,) = budgets
    kubernetes_validate.validate(budget, KUBERNETES_VERSION, strict=True)
    assert budget["metadata"]["namespace"] == "ingress-nginx"
    assert _selects(budget["spec"]["selector"], pod_labels)
    assert 1 <= budget["spec"]["minAvailable"] < spec["replicas"]


def test_the_app_admits_the_controller_pods_the_budget_keeps(rendered):
    _, built = rendered
    (rule,) = built[("NetworkPolicy", "web-ingress")]["spec"]["ingress"]
    controller_peers = [
        peer["podSelector"]
        for peer in rule["from"]
        if peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] == "ingress-nginx"
    ]
    assert controller_peers and all(_selects(peer, CONTROLLER_LABELS) for peer in controller_peers)


def test_the_broker_is_one_failover_endpoint_and_the_locks_three_independent_nodes(rendered):
    # given
    _, built = rendered
    config = built[("ConfigMap", "app-config")]["data"]
    # then: the broker is a URL the app's clients (health's redis-py among them) can open: the
    # example's managed endpoint, not Sentinel (deploy/k8s/README.md says which keys take that)
    broker = redis.Redis.from_url(config["BROKER_REDIS_URL"])
    assert broker.connection_pool.connection_kwargs["host"]
    assert "sentinel" not in config["BROKER_REDIS_URL"]
    # the lock quorum stays three separate nodes, never a replicated set (ADR 0003)
    hosts = [
        redis.Redis.from_url(url).connection_pool.connection_kwargs["host"]
        for url in config["LOCK_REDIS_URLS"].split(",")
    ]
    assert len(hosts) == len(set(hosts)) == 3
    assert config["BROKER_REDIS_URL"].split("//")[1].split(":")[0] not in hosts
