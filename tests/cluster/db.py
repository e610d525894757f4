"""One way for the cluster tests to open a psycopg connection to the cluster's own database."""

from __future__ import annotations

from typing import Any

import psycopg

from deploy.local import cluster


def connect(cfg: cluster.Settings, port: int, *, timeout: int = 5) -> psycopg.Connection[Any]:
    """Autocommit, no server-side prepared statements (PgBouncer's transaction mode), bounded connect."""
    return psycopg.connect(
        host="127.0.0.1",
        port=port,
        dbname=cfg.db_name,
        user=cfg.db_user,
        password=cfg.db_password,
        autocommit=True,
        prepare_threshold=None,
        connect_timeout=timeout,
    )
