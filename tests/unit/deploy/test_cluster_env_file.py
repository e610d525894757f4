"""``.cluster/cluster.env`` holds the cluster's passwords: readable by the checkout's owner only
(issue 22, item 10)."""

import dataclasses
import os
import stat

import pytest

from deploy.local import cluster
from deploy.local.cluster.cli import write_cluster_env

pytestmark = pytest.mark.unit


def test_the_cluster_env_file_is_private_to_the_checkouts_owner(tmp_path):
    # given an older file every local user could read
    cfg = dataclasses.replace(cluster.Settings(), state_dir=tmp_path)
    (tmp_path / "redis-password").write_text("0123456789abcdef\n")
    (tmp_path / "cluster.env").write_text("OLD=1\n")
    (tmp_path / "cluster.env").chmod(0o644)
    # when the cluster writes it
    write_cluster_env(cfg)
    # then
    info = (tmp_path / "cluster.env").stat()
    assert stat.S_IMODE(info.st_mode) == 0o600
    if os.geteuid() == 0:
        assert info.st_uid == cluster.REPO.stat().st_uid
    assert "LOCK_REDIS_PASSWORD=0123456789abcdef" in (tmp_path / "cluster.env").read_text()
