"""Render the deployment templates into a folder, one target at a time.

Each ``render_<target>`` writes finished files under ``out`` and returns their paths; the values
come from ``deploy.selectors`` (settings, so the environment). A template naming a value nobody
supplied raises ``deploy.render.MissingTemplateValue`` naming it.
"""

import shutil
from collections.abc import Callable
from pathlib import Path

import yaml

from deploy import selectors
from deploy.keepalived.render import keepalived_settings, render_keepalived_files
from deploy.nginx.render import TEMPLATES as NGINX_TEMPLATES
from deploy.nginx.render import render_nginx as render_nginx_files
from deploy.patroni.render import render_etcd, render_haproxy
from deploy.patroni.render import render_patroni as render_patroni_file
from deploy.pgbouncer.render import render_pgbouncer_ini
from deploy.redis import acl
from deploy.render import render_file

DEPLOY_DIR = Path(__file__).resolve().parent
SYSTEMD_UNITS = ("app-web.service", "app-worker.service", "app-beat.service", "app-live.service")
K8S_OVERLAY = "example"
# Removes the admin Ingresses' allow list (DEPLOY_ADMIN_PUBLIC=1): the admin on the internet.
ADMIN_PUBLIC_COMPONENT = "admin-public"


def render_pgbouncer(*, out: Path) -> list[Path]:
    return [render_pgbouncer_ini(selectors.pgbouncer_values(), out / "pgbouncer.ini")]


def render_patroni(*, out: Path) -> list[Path]:
    """This host's Patroni and etcd members (when it runs them) and HAProxy (deploy/patroni/README.md)."""
    values = selectors.patroni_rendering()  # before writing anything: a missing value leaves no half folder
    written = []
    if values.patroni is not None:
        written.append(render_patroni_file(values.patroni, out / "patroni.yml"))
    if values.etcd_me is not None:
        etcd_data = Path("/var/lib/etcd") / values.etcd_token
        etcd = render_etcd(values.etcd_me, values.etcd_members, data_dir=etcd_data, token=values.etcd_token,
                           tls=values.tls, out=out / "etcd.yml")  # fmt: skip
        written.append(etcd)
    written.append(render_haproxy(values.haproxy, out / "haproxy.cfg"))
    return written


def render_nginx(*, out: Path) -> list[Path]:
    """``nginx.conf`` and its includes, from the ``NGINX_*`` variables (deploy/nginx/render.py)."""
    selectors.nginx_app_servers_given()
    render_nginx_files(out)
    return [out / name for name in NGINX_TEMPLATES]


def render_keepalived(*, out: Path) -> list[Path]:
    """One edge's keepalived (``KEEPALIVED_*`` variables, deploy/keepalived/render.py): the
    config for /etc/keepalived/ and the check and notify scripts it runs from there (ADR 0020)."""
    return render_keepalived_files(out, keepalived_settings(), scripts_dir=Path("/etc/keepalived"))


def render_redis(*, out: Path) -> list[Path]:
    """ACL files for the lock nodes and the broker node (deploy/redis/README.md): each role's
    user with only its commands, passwords as SHA-256 hashes."""
    users = selectors.redis_users()
    lock_name, lock_password = users["lock"]
    files = {
        "lock-users.acl": [
            acl.lock_user(
                lock_name, lock_password, key_patterns=[f"{selectors.lock_key_prefix()}*"], hashed=True
            )
        ],
        "broker-users.acl": [
            acl.broker_user(*users["broker"], hashed=True),
            acl.replication_user(*users["replication"], hashed=True),
            acl.sentinel_user(*users["sentinel"], hashed=True),
        ],
    }
    written = []
    for name, lines in files.items():
        path = out / name
        path.write_text(acl.acl_lines(lines))
        path.chmod(0o640)
        written.append(path)
    return written


def render_systemd(*, out: Path) -> list[Path]:
    values = selectors.systemd_values()
    folder = DEPLOY_DIR / "systemd"
    return [render_file(folder / f"{unit}.template", values, out / unit) for unit in SYSTEMD_UNITS]


PROMETHEUS_RULE = "prometheusrule.yaml"


def prometheus_rule_text() -> str:
    """deploy/monitoring/alerts.yml as the Prometheus Operator's PrometheusRule (one source)."""
    alerts = yaml.safe_load((DEPLOY_DIR / "monitoring" / "alerts.yml").read_text())
    rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "app-alerts", "labels": {"app.kubernetes.io/name": "app"}},
        "spec": alerts,
    }
    header = (
        "# Rendered from deploy/monitoring/alerts.yml by `manage.py render_deploy k8s`; edit that file.\n"
        "# A Prometheus whose ruleSelector wants a label of its own (e.g. release: NAME) needs it added.\n"
    )
    return header + yaml.safe_dump(rule, sort_keys=False, width=100, allow_unicode=True)


def render_k8s(*, out: Path) -> list[Path]:
    """The kustomize base (with PgBouncer's ini rendered from its template) and the example overlay,
    the overlay's image and namespace set from settings."""
    values = selectors.k8s_values()  # before writing anything: a missing value leaves no half folder
    source = DEPLOY_DIR / "k8s"
    shutil.copytree(source / "base", out / "base", dirs_exist_ok=True)
    # The ingress controller's half of the edge (its own namespace; applied once per cluster).
    shutil.copytree(source / "ingress-nginx", out / "ingress-nginx", dirs_exist_ok=True)
    render_pgbouncer_ini(selectors.k8s_pgbouncer_values(), out / "base" / "pgbouncer.ini")
    shutil.copytree(source / "monitoring", out / "monitoring", dirs_exist_ok=True)
    shutil.copytree(source / "components", out / "components", dirs_exist_ok=True)
    shutil.copytree(source / "certs", out / "certs", dirs_exist_ok=True)
    # The database: the CloudNativePG Cluster the overlay includes, or a managed one's Services.
    for folder in ("postgres", "managed-database"):
        shutil.copytree(source / folder, out / folder, dirs_exist_ok=True)
    (out / "monitoring" / PROMETHEUS_RULE).write_text(prometheus_rule_text())
    overlay = out / "overlays" / K8S_OVERLAY
    shutil.copytree(source / "overlays" / K8S_OVERLAY, overlay, dirs_exist_ok=True)
    kustomization_file = overlay / "kustomization.yaml"
    kustomization = yaml.safe_load(kustomization_file.read_text())
    kustomization["namespace"] = values["namespace"]
    # Every image by its digest: a tag can be moved to other contents after review.
    kustomization["images"] = [
        {"name": name, "newName": repository, "digest": digest}
        for name, (repository, digest) in values["images"].items()
    ]
    if values["admin_public"]:
        kustomization["components"] = [f"../../components/{ADMIN_PUBLIC_COMPONENT}"]
    header = f"# Rendered by `manage.py render_deploy k8s` from deploy/k8s/overlays/{K8S_OVERLAY}.\n"
    kustomization_file.write_text(header + yaml.safe_dump(kustomization, sort_keys=False))
    app_config_file = overlay / "app-config.yaml"
    app_config = yaml.safe_load(app_config_file.read_text())
    app_config["data"]["HEALTH_TRUSTED_PROXIES"] = values["ingress_proxies"]
    app_config_file.write_text(header + yaml.safe_dump(app_config, sort_keys=False, width=200))
    _render_redis_policy(
        out / "redis", redis_namespace=values["redis_namespace"], app_namespace=values["namespace"]
    )
    return sorted(path for path in out.rglob("*") if path.is_file())


def _render_redis_policy(folder: Path, *, redis_namespace: str, app_namespace: str) -> None:
    """The Redis NetworkPolicy in Redis's namespace, admitting the app's pods of its namespace."""
    shutil.copytree(DEPLOY_DIR / "k8s" / "redis", folder, dirs_exist_ok=True)
    kustomization_file = folder / "kustomization.yaml"
    kustomization = yaml.safe_load(kustomization_file.read_text())
    kustomization["namespace"] = redis_namespace
    app_peer = "/spec/ingress/0/from/0/namespaceSelector/matchLabels/kubernetes.io~1metadata.name"
    kustomization["patches"] = [
        {
            "target": {"kind": "NetworkPolicy", "name": "redis-ingress"},
            "patch": yaml.safe_dump([{"op": "replace", "path": app_peer, "value": app_namespace}]),
        }
    ]
    header = "# Rendered by `manage.py render_deploy k8s` from deploy/k8s/redis.\n"
    kustomization_file.write_text(header + yaml.safe_dump(kustomization, sort_keys=False))


RENDERERS: dict[str, Callable[..., list[Path]]] = {
    "nginx": render_nginx,
    "keepalived": render_keepalived,
    "pgbouncer": render_pgbouncer,
    "k8s": render_k8s,
    "systemd": render_systemd,
    "redis": render_redis,
    "patroni": render_patroni,
}


def deploy_render(*, target: str, out: Path) -> list[Path]:
    """Render one target (a key of ``RENDERERS``) into ``out``; return the files written."""
    out.mkdir(parents=True, exist_ok=True)
    return RENDERERS[target](out=out)
