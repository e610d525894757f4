"""The keepalived renderer (ADR 0020): what keepalived itself accepts, tracking that drives an
edge to FAULT, and values checked before they reach the file."""

import socket
import subprocess
from pathlib import Path

import pytest

from deploy.keepalived.render import (
    KeepalivedConfigError,
    KeepalivedValues,
    keepalived_settings,
    render_keepalived_files,
)
from tests.programs import require_program

pytestmark = pytest.mark.unit

ENVIRON = {
    "KEEPALIVED_OWN_ADDRESS": "10.0.0.2",
    "KEEPALIVED_PEER_ADDRESS": "10.0.0.3",
    "KEEPALIVED_VIRTUAL_IP": "10.0.0.10/24",
}


def _values(tmp_path: Path, **changes: object) -> KeepalivedValues:
    base = keepalived_settings(ENVIRON)
    fields = {**base.__dict__, "state_file": tmp_path / "state", "metrics_file": tmp_path / "edge.prom"}
    return KeepalivedValues(**{**fields, **changes})


def test_the_rendering_passes_keepalived_config_test(tmp_path):
    # given
    keepalived = require_program("keepalived", "keepalived")
    # when
    written = render_keepalived_files(tmp_path, _values(tmp_path))
    # then keepalived's own check finds nothing to ignore or default (exit status 0)
    result = subprocess.run(
        [keepalived, "--config-test", "-f", str(tmp_path / "keepalived.conf")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert [path.name for path in written] == ["keepalived.conf", "check_nginx.sh", "notify.sh"]


def test_unicast_vrrp3_with_sub_second_adverts_and_a_tracking_script_without_weight(tmp_path):
    render_keepalived_files(tmp_path, _values(tmp_path))
    lines = [line.strip() for line in (tmp_path / "keepalived.conf").read_text().splitlines()]
    assert "vrrp_version 3" in lines
    assert "unicast_src_ip 10.0.0.2" in lines
    assert lines[lines.index("unicast_peer {") + 1] == "10.0.0.3"
    advert = next(line for line in lines if line.startswith("advert_int "))
    assert 0 < float(advert.split()[1]) < 1
    # a failing check drives the instance to FAULT: no weight turns it into a priority change
    assert lines[lines.index("track_script {") + 1] == "edge_nginx"
    assert not [line for line in lines if line.startswith("weight")]


def test_the_check_fails_when_nothing_listens_and_the_notify_script_writes_state_and_metrics(tmp_path):
    # given a port where nothing listens
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    render_keepalived_files(tmp_path, _values(tmp_path, check_port=closed_port))
    # when
    check = subprocess.run([str(tmp_path / "check_nginx.sh")], capture_output=True, check=False)
    subprocess.run([str(tmp_path / "notify.sh"), "INSTANCE", "edge", "BACKUP", "100"], check=True)
    # then
    assert check.returncode != 0
    assert (tmp_path / "state").read_text() == "BACKUP\n"
    metrics = (tmp_path / "edge.prom").read_text()
    assert 'edge_vrrp_state{state="BACKUP"} 1' in metrics
    assert 'edge_vrrp_state{state="MASTER"} 0' in metrics


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("KEEPALIVED_OWN_ADDRESS", "10.0.0.2; rm"),
        ("KEEPALIVED_VIRTUAL_IP", "not-an-address"),
        ("KEEPALIVED_INTERFACE", "eth0 }"),
        ("KEEPALIVED_PRIORITY", "255"),
        ("KEEPALIVED_ROUTER_ID", "edge{"),
    ],
)
def test_a_bad_value_is_refused_naming_its_variable(tmp_path, variable, value):
    environ = {**ENVIRON, variable: value}
    with pytest.raises(KeepalivedConfigError, match=variable):
        render_keepalived_files(tmp_path, keepalived_settings(environ))


def test_the_pair_addresses_have_no_default():
    with pytest.raises(KeepalivedConfigError, match="KEEPALIVED_VIRTUAL_IP is required"):
        keepalived_settings({k: v for k, v in ENVIRON.items() if k != "KEEPALIVED_VIRTUAL_IP"})
