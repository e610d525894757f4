"""Cluster tests talk to the running local cluster (``make up``) through its real ports."""

import pytest
import requests

from deploy.local import cluster


@pytest.fixture(scope="session")
def nginx_url(cluster_settings: cluster.Settings) -> str:
    return f"https://127.0.0.1:{cluster_settings.nginx_https_port}"


@pytest.fixture
def http(cluster_settings: cluster.Settings) -> requests.Session:
    """HTTP client that trusts the cluster's self-signed certificate and ignores proxy settings."""
    session = requests.Session()
    session.trust_env = False  # an environment CA bundle would override ``verify``
    session.verify = str(cluster_settings.state_dir / "nginx" / "tls.crt")
    return session
