"""Cluster tests talk to the running local cluster (``make up``) through its real ports."""

import fcntl
from collections.abc import Iterator

import pytest
import requests

from deploy.local import cluster
from deploy.nginx.render import RATELIMIT_BYPASS_HEADER


@pytest.fixture(scope="session")
def nginx_url(cluster_settings: cluster.Settings) -> str:
    """The edge as clients reach it: the edge pair's virtual address (``EDGE_URL``, ADR 0020)."""
    return cluster_settings.edge_url()


@pytest.fixture(scope="session")
def edge_network(cluster_settings: cluster.Settings) -> cluster.EdgeNetwork:
    """The edge pair's addresses: the virtual one (``vip``), each edge's, the host's bridge end."""
    return cluster.EdgeNetwork.of(cluster_settings)


@pytest.fixture
def http(cluster_settings: cluster.Settings) -> requests.Session:
    """HTTP client that trusts the cluster's self-signed certificate and ignores proxy settings.

    It sends the cluster's rate-limit bypass token, so tests that put load through NGINX are not
    throttled; the rate-limit tests (tests/cluster/edge/) use a client without it (ADR 0006).
    """
    session = requests.Session()
    session.trust_env = False  # an environment CA bundle would override ``verify``
    session.verify = str(cluster_settings.state_dir / "nginx" / "tls.crt")
    session.headers[RATELIMIT_BYPASS_HEADER] = cluster_settings.ratelimit_bypass_token()
    return session


@pytest.fixture
def exclusive_app_servers(cluster_settings: cluster.Settings) -> Iterator[None]:
    """Hold a lock file while a test kills or restarts app servers, so two test runs on the same
    cluster (parallel sessions) never take servers down at the same time."""
    with (cluster_settings.state_dir / "app-servers-fault.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
