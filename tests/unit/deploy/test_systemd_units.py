"""The systemd units render, pass ``systemd-analyze verify`` and give the drain time to finish."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from deploy import selectors, services
from tests.programs import require_program

pytestmark = pytest.mark.unit

UNITS = ("app-web.service", "app-worker.service", "app-beat.service", "app-live.service")


def _directives(path: Path) -> dict[str, dict[str, list[str]]]:
    """Sections to key to values (a key like Environment= may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    section = ""
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            sections[section] = {}
            continue
        key, _, value = line.partition("=")
        sections[section].setdefault(key, []).append(value)
    return sections


@pytest.fixture(autouse=True)
def server_address(settings):
    # the one value a VM's units need that has no default (the server's private address)
    settings.DEPLOY_GUNICORN_BIND = "10.0.0.11:8000"
    settings.DEPLOY_LIVE_BIND = "10.0.0.11:8001"
    # systemd-analyze verify checks that ExecStart's program exists: point at this checkout
    settings.DEPLOY_APP_DIR = str(services.DEPLOY_DIR.parent)
    settings.DEPLOY_VENV = sys.prefix


@pytest.fixture
def rendered(tmp_path) -> Path:
    call_command("render_deploy", "systemd", "--out", str(tmp_path))
    return tmp_path


def test_the_rendered_units_pass_systemd_analyze_verify(rendered):
    systemd_analyze = require_program("systemd-analyze", "systemd")
    result = subprocess.run(
        [systemd_analyze, "verify", *(str(rendered / unit) for unit in UNITS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # verify exits 0 on unknown keys and bad values, warning on stderr: so no output at all
    assert (result.returncode, result.stderr) == (0, "")


def test_web_stops_with_sigterm_and_waits_past_the_drain_and_graceful_timeout(rendered):
    service = _directives(rendered / "app-web.service")["Service"]
    assert service["KillSignal"] == ["SIGTERM"]
    assert service["KillMode"] == ["mixed"]  # the master gets SIGTERM; it tells its workers
    stop_timeout = int(service["TimeoutStopSec"][0])
    assert stop_timeout > selectors.drain_seconds() + selectors.graceful_timeout_seconds()
    assert service["Type"] == ["notify"]  # gunicorn tells systemd when it is ready
    assert service["ExecStart"][0].endswith("gunicorn.conf.py config.wsgi")


def test_worker_and_beat_stop_with_sigterm(rendered):
    worker = _directives(rendered / "app-worker.service")["Service"]
    beat = _directives(rendered / "app-beat.service")["Service"]
    assert worker["KillSignal"] == beat["KillSignal"] == ["SIGTERM"]
    assert int(worker["TimeoutStopSec"][0]) >= 60  # warm shutdown: the tasks in hand finish
    assert " beat " in beat["ExecStart"][0] and " worker " in worker["ExecStart"][0]


def test_live_stops_with_sigterm_and_waits_past_its_drain(rendered):
    service = _directives(rendered / "app-live.service")["Service"]
    assert service["KillSignal"] == ["SIGTERM"]
    assert int(service["TimeoutStopSec"][0]) > settings_drain() + 5
    assert service["ExecStart"][0].endswith("manage.py live_server --bind 10.0.0.11:8001")


def settings_drain() -> float:
    from django.conf import settings

    return float(settings.DEPLOY_LIVE_DRAIN_SECONDS)


def test_values_come_from_settings(tmp_path):
    with override_settings(DEPLOY_SERVICE_USER="sms", DEPLOY_GUNICORN_GRACEFUL_TIMEOUT=45):
        call_command("render_deploy", "systemd", "--out", str(tmp_path))
        expected_stop = selectors.web_stop_timeout_seconds()
    service = _directives(tmp_path / "app-web.service")["Service"]
    assert service["User"] == ["sms"]
    assert int(service["TimeoutStopSec"][0]) == expected_stop > 45


def test_a_template_naming_an_unknown_value_is_an_error_naming_it(tmp_path, monkeypatch):
    # given: a copy of the deploy folder whose web unit asks for a value nobody supplies
    copy = tmp_path / "deploy"
    shutil.copytree(services.DEPLOY_DIR / "systemd", copy / "systemd")
    web = copy / "systemd" / "app-web.service.template"
    web.write_text(web.read_text() + "\n# ${cpu_quota}\n")
    monkeypatch.setattr(services, "DEPLOY_DIR", copy)
    # then
    with pytest.raises(CommandError, match="needs a value for 'cpu_quota'"):
        call_command("render_deploy", "systemd", "--out", str(tmp_path / "out"))


def test_every_unit_writes_its_metrics_to_its_own_folder_and_web_reads_them_all(rendered):
    # given the three units of one server
    services = {unit: _directives(rendered / unit)["Service"] for unit in UNITS}
    folders = {}
    for unit, service in services.items():
        environment = dict(value.split("=", 1) for value in service["Environment"])
        folder = environment["PROMETHEUS_MULTIPROC_DIR"]
        # systemd makes (and empties at every start) the folder the process group writes
        assert service["RuntimeDirectory"] == [folder.removeprefix("/run/")], unit
        folders[unit] = folder
    # then each group has its own folder, all under the one the web unit's /metrics reads
    web_environment = dict(value.split("=", 1) for value in services["app-web.service"]["Environment"])
    assert len(set(folders.values())) == len(UNITS)
    assert all(folder.startswith(web_environment["METRICS_SERVER_DIR"] + "/") for folder in folders.values())
