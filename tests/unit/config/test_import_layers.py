"""Every config module sits in a layer of the import contracts, so none escapes them unseen."""

import tomllib

import pytest

from tests.support import REPO

pytestmark = pytest.mark.unit


def _layered_modules() -> set[str]:
    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers = [layer for contract in contracts if contract["type"] == "layers" for layer in contract["layers"]]
    return {name.strip() for layer in layers for name in layer.replace(":", "|").split("|")}


def _config_modules() -> set[str]:
    folder = REPO / "config"
    modules = {f"config.{path.stem}" for path in folder.glob("*.py") if path.stem != "__init__"}
    packages = {f"config.{path.parent.name}" for path in folder.glob("*/__init__.py")}
    return modules | packages


def test_every_config_module_is_in_a_layer():
    assert _config_modules() - _layered_modules() == set()


def test_the_layers_name_only_modules_that_exist():
    named = {name for name in _layered_modules() if name.startswith("config.")}
    assert named - _config_modules() == set()
