"""Start a PgBouncer of our own from a rendered config, next to the cluster's, and stop it by PID.

PgBouncer refuses to run as root, so it runs as ``postgres`` in a folder that user can read
(pytest's ``tmp_path`` is private to root).
"""

import contextlib
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

from deploy.local import cluster
from deploy.local.cluster.processes import chown_to


@contextlib.contextmanager
def postgres_readable_dir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="deploy-pgbouncer-", dir="/tmp"))
    try:
        (folder / "logs").mkdir()
        (folder / "pids").mkdir()
        folder.chmod(0o755)
        chown_to(folder, cluster.PG_USER)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def running_pgbouncer(ini: Path, *, port: int, folder: Path) -> Iterator[int]:
    """Run ``pgbouncer ini`` (which must listen on ``port``) until the block ends; yield its PID."""
    cfg = cluster.Settings(state_dir=folder)
    service = cluster.Service(
        "pgbouncer-under-test",
        ["/usr/sbin/pgbouncer", str(ini)],
        port=port,
        user=cluster.PG_USER,
        stop_signal=signal.SIGINT,
        marker=str(ini),
    )
    pid = cluster.start_service(service, cfg)
    try:
        yield pid
    finally:
        cluster.stop_service(service, cfg)
        cluster.wait_stopped(service, cfg, pid, timeout=10)


def pgbouncer_log(folder: Path) -> str:
    log = folder / "logs" / "pgbouncer-under-test.log"
    return log.read_text() if log.exists() else ""
