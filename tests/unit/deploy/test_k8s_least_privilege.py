"""Kubernetes least privilege (issue 22, item 10): each container gets only the secrets it needs,
pods reach only what they talk to (egress), the Redis policy selects the Redis pods, images are
named by digest, and no password is on a command line."""

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from tests.unit.deploy.k8s_build import (
    EXPORTER_IMAGE,
    IMAGE,
    INGRESS_PROXIES,
    PGBOUNCER_IMAGE,
    build,
    render_and_build,
)

pytestmark = pytest.mark.unit

# What the production settings refuse to start without: every Django process gets these.
REQUIRED = {
    "DJANGO_SECRET_KEY", "DB_PASSWORD", "MESSAGING_WEBHOOK_SECRET", "HEALTH_DETAILED_TOKEN",
    "BROKER_REDIS_PASSWORD", "LOCK_REDIS_PASSWORD",
}  # fmt: skip
SMS = {"MESSAGING_SMS_ACCOUNT_SID", "MESSAGING_SMS_AUTH_TOKEN"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return render_and_build(tmp_path_factory.mktemp("k8s"))


def _containers(built):
    """Every container of the Deployments and Jobs, by its name (the app's: the workload's)."""
    for (kind, _), resource in built.items():
        if kind in ("Deployment", "Job"):
            for container in resource["spec"]["template"]["spec"]["containers"]:
                yield container["name"], container


def _secret_keys(container) -> set[str]:
    return {
        variable["valueFrom"]["secretKeyRef"]["key"]
        for variable in container.get("env", [])
        if "secretKeyRef" in variable.get("valueFrom", {})
    }


def test_no_container_takes_a_whole_secret(built):
    for name, container in _containers(built):
        assert not [source for source in container.get("envFrom", []) if "secretRef" in source], name


@pytest.mark.parametrize(
    ("workload", "secrets"),
    [
        ("web", REQUIRED | {"MESSAGING_WEBHOOK_SECRET_PREVIOUS"}),
        ("live", REQUIRED),
        ("worker", REQUIRED | SMS),
        ("beat", REQUIRED),
        ("migrate", REQUIRED),
    ],
)
def test_each_app_container_gets_the_secrets_it_needs_and_no_more(built, workload, secrets):
    containers = dict(_containers(built))
    assert _secret_keys(containers[workload]) == secrets


def test_the_pgbouncer_exporters_password_is_not_on_its_command_line(built):
    containers = dict(_containers(built))
    exporter = containers["exporter"]
    assert not any(
        "PASSWORD" in arg or "postgres://" in arg
        for arg in exporter.get("args", []) + exporter.get("command", [])
    )
    variables = {variable["name"]: variable for variable in exporter["env"]}
    assert "$(PGBOUNCER_STATS_PASSWORD)" in variables["PGBOUNCER_EXPORTER_CONNECTION_STRING"]["value"]
    assert "pgbouncer" in containers  # PgBouncer itself takes no app secret
    assert _secret_keys(containers["pgbouncer"]) == set()


def _render(tmp_path, **settings) -> None:
    values = {
        "DEPLOY_IMAGE": IMAGE,
        "DEPLOY_PGBOUNCER_IMAGE": PGBOUNCER_IMAGE,
        "DEPLOY_PGBOUNCER_EXPORTER_IMAGE": EXPORTER_IMAGE,
        "DEPLOY_NAMESPACE": "sms-prod",
        "DEPLOY_INGRESS_PROXIES": INGRESS_PROXIES,
        **settings,
    }
    with override_settings(**values):
        call_command("render_deploy", "k8s", "--out", str(tmp_path))


@pytest.mark.parametrize(
    "variable", ["DEPLOY_IMAGE", "DEPLOY_PGBOUNCER_IMAGE", "DEPLOY_PGBOUNCER_EXPORTER_IMAGE"]
)
@pytest.mark.parametrize(
    "image", ["registry.internal/sms/app:2.3.4", "registry.internal/sms/app", "app@sha256:short"]
)
def test_an_image_named_by_tag_alone_is_refused(tmp_path, variable, image):
    with pytest.raises(CommandError, match=f"{variable}=.*names no digest"):
        _render(tmp_path, **{variable: image})
    assert not (tmp_path / "base").exists()


def test_every_container_runs_an_image_named_by_its_digest(built):
    images = {name: container["image"] for name, container in _containers(built)}
    assert images["web"] == IMAGE
    assert images["pgbouncer"] == "registry.internal:5000/pgbouncer@sha256:" + "cd" * 32
    for name, image in images.items():
        assert "@sha256:" in image, name


def _allows_egress(built, labels: dict[str, str], port: int) -> bool:
    """Whether some egress policy selecting a pod with ``labels`` lets it out on TCP ``port``."""
    for (kind, _), policy in built.items():
        if kind != "NetworkPolicy" or "Egress" not in policy["spec"]["policyTypes"]:
            continue
        spec = policy["spec"]
        if any(labels.get(key) != value for key, value in spec["podSelector"].get("matchLabels", {}).items()):
            continue
        for rule in spec.get("egress", []):
            if any(
                entry["port"] == port and entry.get("protocol", "TCP") == "TCP"
                for entry in rule.get("ports", [])
            ):
                return True
    return False


@pytest.mark.parametrize(
    ("workload", "open_ports", "closed_ports"),
    [
        ("web", {53, 6432, 5432, 6379, 26379}, {443, 80, 22, 8000}),
        ("live", {53, 6432, 6379}, {443, 80}),
        ("worker", {53, 6432, 5432, 6379, 443}, {80, 22}),
        ("pgbouncer", {53, 5432}, {443, 6379, 6432}),
    ],
)
def test_pods_reach_only_what_they_talk_to(built, workload, open_ports, closed_ports):
    # given: every pod is under the default-deny egress policy
    deny = built[("NetworkPolicy", "default-deny-egress")]["spec"]
    assert deny["podSelector"] == {} and deny["policyTypes"] == ["Egress"]
    labels = built[("Deployment", workload)]["spec"]["template"]["metadata"]["labels"]
    for port in open_ports:
        assert _allows_egress(built, labels, port), port
    for port in closed_ports:
        assert not _allows_egress(built, labels, port), port


def test_sms_https_goes_to_public_addresses_only(built):
    (rule,) = built[("NetworkPolicy", "worker-egress-sms")]["spec"]["egress"]
    (peer,) = rule["to"]
    assert peer["ipBlock"]["cidr"] == "0.0.0.0/0"
    assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"} <= set(
        peer["ipBlock"]["except"]
    )


def test_the_redis_policy_is_in_redis_namespace_and_selects_the_redis_pods(tmp_path):
    # when
    _render(tmp_path, DEPLOY_REDIS_NAMESPACE="data")
    built = build(tmp_path / "redis")
    # then: in the Redis pods' namespace (the overlay's URLs name *.data.svc), selecting them
    policy = built[("NetworkPolicy", "redis-ingress")]
    assert policy["metadata"]["namespace"] == "data"
    assert policy["spec"]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "redis"}}
    app_rule, own_rule = policy["spec"]["ingress"]
    assert app_rule["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "sms-prod"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "app"}},
        }
    ]
    assert own_rule["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "redis"}}}]
    # and nothing in the app's namespace pretends to guard Redis
    assert not [
        key for key in render_and_build(tmp_path / "again") if key == ("NetworkPolicy", "redis-ingress")
    ]
