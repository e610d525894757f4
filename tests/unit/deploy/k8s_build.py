"""Render the Kubernetes kit with ``render_deploy k8s`` and build its overlay offline, for the
hardening tests: what an operator applies, not only the committed example."""

import subprocess
import sys
from pathlib import Path

import yaml
from django.core.management import call_command
from django.test import override_settings

# Images named by their digests, as production renderings require.
IMAGE = "registry.internal:5000/sms/app@sha256:" + "ab" * 32
PGBOUNCER_IMAGE = "registry.internal:5000/pgbouncer:1.18.0@sha256:" + "cd" * 32
EXPORTER_IMAGE = "registry.internal:5000/pgbouncer-exporter@sha256:" + "ef" * 32
# The ingress controller's pod address pool.
INGRESS_PROXIES = "10.244.250.0/26"


def build(folder: Path) -> dict[tuple[str, str], dict]:
    """An overlay as kustomize builds it (kubectl's built-in kustomize), by (kind, name)."""
    kubectl = Path(sys.executable).parent / "kubectl"
    output = subprocess.run(
        [str(kubectl), "kustomize", str(folder)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    documents = [document for document in yaml.safe_load_all(output) if document]
    return {(document["kind"], document["metadata"]["name"]): document for document in documents}


def render_and_build(out: Path, **settings: object) -> dict[tuple[str, str], dict]:
    values = {
        "DEPLOY_IMAGE": IMAGE,
        "DEPLOY_PGBOUNCER_IMAGE": PGBOUNCER_IMAGE,
        "DEPLOY_PGBOUNCER_EXPORTER_IMAGE": EXPORTER_IMAGE,
        "DEPLOY_NAMESPACE": "sms-prod",
        "DEPLOY_INGRESS_PROXIES": INGRESS_PROXIES,
        **settings,
    }
    with override_settings(**values):
        call_command("render_deploy", "k8s", "--out", str(out))
    return build(out / "overlays" / "example")


def ingress_paths(built: dict[tuple[str, str], dict]) -> dict[str, tuple[str, dict]]:
    """Every Ingress path: the Ingress that serves it and that Ingress's annotations."""
    return {
        path["path"]: (name, resource["metadata"].get("annotations", {}))
        for (kind, name), resource in built.items()
        if kind == "Ingress"
        for rule in resource["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
