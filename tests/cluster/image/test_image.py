"""The container image, built here by ``make image`` (deploy/image/build.sh), runs the app.

Its gunicorn, started with the production settings and the local cluster's services, answers
the probes and serves the collected static files; ``manage.py check --deploy`` is silent in it;
it runs as uid 10001 with a passwd entry. The build is cached, so a second run takes seconds.
"""

import os
import re
import secrets
import subprocess
import uuid
from collections.abc import Iterator

import pytest
import requests

from deploy.local.cluster import REPO
from deploy.local.host import free_port
from tests.programs import require_program, require_root
from tests.support import wait_until

# The first test also builds the image (its fixture): up to 25 minutes without a cache.
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(2400)]

IMAGE = "localhost/app:test"
# runc with the cgroupfs manager (no systemd here); the storage is build.sh's (vfs, by STORAGE_DRIVER).
PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs"]
STORAGE = {"STORAGE_DRIVER": "vfs"}
ULIMITS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096"]


@pytest.fixture(scope="module")
def image() -> str:
    for program, package in (("buildah", "buildah"), ("podman", "podman"), ("mmdebstrap", "mmdebstrap")):
        require_program(program, package)
    require_root("building the image (vfs storage, chroot isolation)")
    built = subprocess.run(
        ["bash", str(REPO / "deploy" / "image" / "build.sh")],
        env={**os.environ, "IMAGE": IMAGE},
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-4000:]
    return IMAGE


@pytest.fixture(scope="module")
def production_env(cluster_settings) -> dict[str, str]:
    """The production settings' required values, pointed at the local cluster's services."""
    return {
        **cluster_settings.app_env(),
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "MESSAGING_WEBHOOK_SECRET": secrets.token_urlsafe(32),
        "HEALTH_DETAILED_TOKEN": secrets.token_urlsafe(32),
        "HEALTH_TRUSTED_PROXIES": "127.0.0.1/32",
        "DB_HOST": "127.0.0.1",
        "DB_REPLICA_HOST": "127.0.0.1",
        "APP_SERVER_NAME": "image-test",
    }


def _podman(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``podman ARGS`` on build.sh's runtime and storage."""
    return subprocess.run(
        [*PODMAN, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **STORAGE},
    )


def _run(env: dict[str, str]) -> list[str]:
    """``podman run`` of a throwaway container on the host's network, with ``env`` set in it."""
    environment = [f"--env={name}={value}" for name, value in env.items()]
    return ["run", "--rm", "--network", "host", *ULIMITS, *environment]


def _podman_run(
    image: str, env: dict[str, str], *args: str, entrypoint: str
) -> subprocess.CompletedProcess[str]:
    """``args`` to ``entrypoint`` in a throwaway container on the host's network."""
    return _podman(*_run(env), "--entrypoint", entrypoint, image, *args)


@pytest.fixture(scope="module")
def web(image, production_env) -> Iterator[str]:
    """The image's default command (gunicorn) on a free loopback port, as a pod would run it."""
    port = free_port()
    name = f"app-test-{uuid.uuid4().hex[:8]}"
    env = {
        **production_env,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "1",
        "GUNICORN_THREADS": "2",
        "HEALTH_DRAIN_SECONDS": "0",
    }
    started = _podman(*_run(env), "--detach", "--name", name, image, timeout=120)
    assert started.returncode == 0, started.stderr
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: requests.get(f"{url}/health/live", timeout=2).status_code == 200,
            timeout=90,
            interval=1,
            ignoring=(requests.RequestException,),
            message=lambda: (
                f"gunicorn in the image did not answer: {_podman('logs', name, timeout=60).stderr[-3000:]}"
            ),
        )
        yield url
    finally:
        _podman("rm", "--force", "--time", "5", name, timeout=60)


def test_the_images_gunicorn_answers_live_and_ready_against_the_cluster(web):
    live = requests.get(f"{web}/health/live", timeout=5)
    ready = requests.get(f"{web}/health/ready", timeout=10)
    assert live.status_code == 200
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] in {"pass", "warn"}


def test_the_image_serves_its_collected_static_files_with_long_cache(web):
    # behind the edge, which says the request came over TLS
    page = requests.get(
        f"{web}/admin/login/", headers={"Host": "127.0.0.1", "X-Forwarded-Proto": "https"}, timeout=10
    )
    assert page.status_code == 200
    stylesheet = re.search(r'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', page.text)
    assert stylesheet, page.text[:1000]
    asset = requests.get(f"{web}{stylesheet.group(1)}", headers={"X-Forwarded-Proto": "https"}, timeout=10)
    assert asset.status_code == 200
    assert "immutable" in asset.headers["Cache-Control"]


def test_check_deploy_is_silent_under_the_production_settings(image, production_env):
    result = _podman_run(
        image, production_env, "manage.py", "check", "--deploy", "--fail-level", "DEBUG", entrypoint="python"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "System check identified no issues (0 silenced)."
    assert result.stderr == ""


def test_the_image_runs_as_uid_10001_with_a_passwd_entry(image):
    result = _podman_run(
        image,
        {},
        "-c",
        "import getpass, os; print(os.getuid(), os.getgid(), getpass.getuser())",
        entrypoint="python",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["10001", "10001", "app"]


def test_the_image_carries_no_development_tool_and_no_build_ca(image):
    result = _podman_run(
        image, {}, "-c", "ls /opt/venv/bin /usr/local/share/ca-certificates", entrypoint="sh"
    )
    assert result.returncode == 0, result.stderr
    programs = set(result.stdout.split())
    assert {"gunicorn", "celery", "python"} <= programs
    assert programs & {"pytest", "locust", "mypy", "ruff", "pip", "kubectl"} == set()
    assert not any(name.startswith("build-extra") for name in programs)
