"""The rendered templates pass ``nginx -t``, with production-like values and with the cluster's."""

import subprocess

import pytest

from deploy.nginx.render import render_nginx

pytestmark = pytest.mark.cluster


@pytest.fixture
def certificate(tmp_path):
    cert, key = tmp_path / "edge.crt", tmp_path / "edge.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=edge.test", "-keyout", str(key), "-out", str(cert)],
        capture_output=True, check=True, timeout=30,
    )  # fmt: skip
    return cert, key


def nginx_test(conf, tmp_path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["nginx", "-t", "-c", str(conf), "-e", str(tmp_path / "error.log")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd="/",  # the includes resolve next to nginx.conf, not in the working directory
    )


@pytest.fixture
def rendered(tmp_path, certificate):
    cert, key = certificate
    environ = {
        "NGINX_SERVER_NAME": "app.example.org www.app.example.org",
        "NGINX_APP_SERVERS": "10.0.1.1:8000,10.0.1.2:8000,10.0.1.3:8000,10.0.1.4:8000",
        "NGINX_WEBSOCKET_SERVERS": "10.0.2.1:8001",
        "NGINX_TLS_CERT": str(cert),
        "NGINX_TLS_KEY": str(key),
        "NGINX_STATE_DIR": str(tmp_path),
        "NGINX_LOG_DIR": str(tmp_path),
        "NGINX_RATELIMIT_BYPASS_TOKEN": "f" * 32,
    }
    return render_nginx(tmp_path / "conf", environ=environ)


def test_a_rendering_with_production_values_passes_nginx_t(rendered, tmp_path):
    # when
    result = nginx_test(rendered, tmp_path)
    # then
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_nginx_t_catches_a_broken_rendering(rendered, tmp_path):
    # given: the check is only worth something if it can fail
    (rendered.parent / "edge_proxy.conf").write_text(
        "proxy_pass http://nowhere_defined;\nbogus_directive on;\n"
    )
    # when
    result = nginx_test(rendered, tmp_path)
    # then
    assert result.returncode != 0
    assert "bogus_directive" in result.stderr


@pytest.mark.parametrize("edge", ["a", "b"])
def test_the_running_cluster_config_passes_nginx_t(cluster_settings, tmp_path, edge):
    conf = cluster_settings.state_dir / "nginx" / f"edge-{edge}" / "nginx.conf"
    assert nginx_test(conf, tmp_path).returncode == 0
