"""Shared fixtures. Tests run against the real services that ``make test`` starts."""

import pytest

from deploy.local import cluster


@pytest.fixture(scope="session")
def cluster_settings() -> cluster.Settings:
    """The ports and paths of the running local cluster."""
    return cluster.Settings()
