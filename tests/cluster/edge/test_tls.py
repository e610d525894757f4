"""TLS at the edge: 1.2 and 1.3 only, HTTP/2 offered, plain HTTP redirected."""

import subprocess

import pytest

from deploy.local import cluster

pytestmark = pytest.mark.cluster


def s_client(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    vip = cluster.EdgeNetwork.of(cluster.Settings()).vip
    return subprocess.run(
        ["openssl", "s_client", "-connect", f"{vip}:{port}", "-servername", "localhost", *args],
        input="",
        capture_output=True,
        text=True,
        errors="replace",  # after an h2 handshake the server's first frames are binary
        timeout=10,
        check=False,
    )


@pytest.mark.parametrize("version", ["-tls1", "-tls1_1"])
def test_tls_1_0_and_1_1_are_refused_by_the_server(cluster_settings, version):
    # when: a client willing to speak the old version (SECLEVEL=0 lifts the client's own refusal)
    result = s_client(cluster_settings.nginx_https_port, version, "-cipher", "DEFAULT:@SECLEVEL=0")
    # then: the server answered with a protocol_version alert (70), no session
    assert result.returncode != 0
    assert "alert protocol version" in result.stderr
    assert "Cipher is (NONE)" in result.stdout


@pytest.mark.parametrize(("version", "name"), [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")])
def test_tls_1_2_and_1_3_are_accepted_with_http2(cluster_settings, version, name):
    # when
    result = s_client(cluster_settings.nginx_https_port, version, "-alpn", "h2,http/1.1")
    # then
    assert result.returncode == 0, result.stderr
    assert f"New, {name}, Cipher is" in result.stdout
    assert "ALPN protocol: h2" in result.stdout


def test_tls_1_2_offers_only_forward_secret_aead_ciphers(cluster_settings):
    # when: a client offering only a static-RSA CBC suite
    result = s_client(cluster_settings.nginx_https_port, "-tls1_2", "-cipher", "AES128-SHA:@SECLEVEL=0")
    # then
    assert result.returncode != 0
    assert "Cipher is (NONE)" in result.stdout


def test_plain_http_redirects_to_the_same_path_on_https_at_the_configured_name(
    http, cluster_settings, edge_network, nginx_url
):
    # when: the request names the host as localhost, another configured name
    response = http.get(
        f"http://{edge_network.vip}:{cluster_settings.nginx_http_port}/api/items?page=2",
        headers={"Host": "localhost"},
        allow_redirects=False,
        timeout=5,
    )
    # then: the redirect names the first configured name (the virtual address), not what the client sent
    assert response.status_code == 301
    assert response.headers["Location"] == f"{nginx_url}/api/items?page=2"
