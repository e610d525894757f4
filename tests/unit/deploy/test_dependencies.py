"""The two lock files and pyproject.toml agree with each other and with what the code imports."""

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from deploy.local.cluster import REPO

pytestmark = pytest.mark.unit

# Code that runs in production (the image, the VMs); deploy/local is the development cluster runner.
APP_DIRS = ("config", "health", "logins", "locking", "jobs", "replicas", "messaging", "live", "deploy")
DEV_DIRS = ("tests", "bench", "deploy/local")
FIRST_PARTY = {*APP_DIRS, "tests", "bench", "manage"}
# Imported only behind `try: ... except ImportError` by a comparison benchmark, never installed.
OPTIONAL = {"rest_framework"}
DOTTED = re.compile(r"[a-z_][a-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")
REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _declared(requirements: list[str]) -> set[str]:
    return {_normalise(REQUIREMENT.match(line).group(1)) for line in requirements}  # type: ignore[union-attr]


def _lock(name: str) -> dict[str, tuple[str, int]]:
    """Distribution -> (version, number of hashes) of a lock file."""
    pins: dict[str, tuple[str, int]] = {}
    current = ""
    for line in (REPO / name).read_text().splitlines():
        match = REQUIREMENT.match(line)
        if match:
            current = _normalise(match.group(1))
            pins[current] = (match.group(2), 0)
        elif line.strip().startswith("--hash=sha256:") and current:
            version, hashes = pins[current]
            pins[current] = (version, hashes + 1)
    return pins


def _python_files(folders: tuple[str, ...], *, exclude: tuple[str, ...] = ()) -> list[Path]:
    files = []
    for folder in folders:
        for path in (REPO / folder).rglob("*.py"):
            relative = path.relative_to(REPO).as_posix()
            if "/migrations/" in relative or any(relative.startswith(f"{x}/") for x in exclude):
                continue
            files.append(path)
    return files


def _third_party_names(files: list[Path]) -> tuple[set[str], set[str]]:
    """Top-level modules imported, and the first part of every dotted string (Django settings name
    backends and apps by such strings), minus the standard library and the project's own."""
    imported: set[str] = set()
    named: set[str] = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
            elif (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and DOTTED.fullmatch(node.value)
            ):
                named.add(node.value.split(".")[0])
    ignore = set(sys.stdlib_module_names) | FIRST_PARTY | {"__future__"}
    return imported - ignore, named - ignore


def _distributions(modules: set[str]) -> dict[str, set[str]]:
    """Module -> the distributions that install it (in this virtualenv)."""
    installed = packages_distributions()
    return {module: {_normalise(d) for d in installed.get(module, [])} for module in modules}


def test_both_locks_pin_every_distribution_with_hashes():
    for name in ("requirements.lock", "requirements-dev.lock"):
        pins = _lock(name)
        assert pins, f"{name} pins nothing"
        unhashed = sorted(dist for dist, (_, hashes) in pins.items() if hashes == 0)
        assert unhashed == [], f"{name}: no --hash for {unhashed}"


def test_the_dev_lock_has_the_runtime_lock_pins_and_the_runtime_lock_no_dev_tools():
    runtime, dev = _lock("requirements.lock"), _lock("requirements-dev.lock")
    extras = _pyproject()["project"]["optional-dependencies"]
    # the development virtualenv runs exactly what production runs
    assert {d: v for d, (v, _) in runtime.items()} == {d: dev[d][0] for d in runtime if d in dev}
    assert set(runtime) <= set(dev)
    # and no test, lint or benchmark tool reaches production
    tools = _declared(extras["dev"]) | _declared(extras["bench"])
    assert tools & set(runtime) == set()
    assert _declared(_pyproject()["project"]["dependencies"]) <= set(runtime)


def test_everything_the_app_imports_is_a_declared_runtime_dependency():
    imported, _ = _third_party_names(_python_files(APP_DIRS, exclude=("deploy/local",)))
    declared = _declared(_pyproject()["project"]["dependencies"])
    undeclared = {module: dists for module, dists in _distributions(imported).items() if not dists & declared}
    assert undeclared == {}


def test_every_declared_runtime_dependency_is_used_by_the_app():
    imported, named = _third_party_names(_python_files(APP_DIRS, exclude=("deploy/local",)))
    used = set().union(*_distributions(imported | named).values())
    # programs the deployment runs (the image's entrypoint, the units and manifests)
    used |= {"gunicorn", "celery"}
    # psycopg[binary]: Django's PostgreSQL backend imports psycopg; the binary part is its C build
    used |= {"psycopg"}
    # the cache backend named in settings (django_prometheus.cache.backends.redis) subclasses it
    used |= {"django-redis"}
    declared = _declared(_pyproject()["project"]["dependencies"])
    assert declared - used == set(), "declared for production but nothing imports them"


def test_the_tests_and_benchmarks_import_only_declared_distributions():
    imported, _ = _third_party_names(_python_files(DEV_DIRS))
    project = _pyproject()["project"]
    declared = _declared(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        declared |= _declared(extra)
    undeclared = {
        module: dists for module, dists in _distributions(imported - OPTIONAL).items() if not dists & declared
    }
    assert undeclared == {}


def test_benchmark_only_libraries_stay_out_of_the_app_and_the_tests():
    # pottery patches json.dumps on import; locust gevent-patches sockets (shared/DESIGN.md)
    imported, _ = _third_party_names(_python_files((*APP_DIRS, "tests")))
    assert imported & {"pottery", "locust", "redis_lock", "matplotlib", "gevent"} == set()
