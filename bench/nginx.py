"""The throwaway NGINX a benchmark runs in a temporary folder of its own.

Outside ``/etc`` NGINX writes to compiled-in paths unless every ``*_temp_path``, the pid file
and the error log are set, and its workers run unprivileged: the folder is made for that here,
and the benchmark supplies only its ``http`` block's own lines."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

# (directive prefix, folder under tmp/) for every temp path NGINX may write
TEMP_PATHS = (
    ("client_body", "body"),
    ("proxy", "proxy"),
    ("fastcgi", "fastcgi"),
    ("uwsgi", "uwsgi"),
    ("scgi", "scgi"),
)


def make_folder(prefix: str) -> Path:
    """A new temporary folder with the temp folders NGINX's unprivileged workers write to."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)
    for _directive, temp in TEMP_PATHS:
        (folder / "tmp" / temp).mkdir(parents=True)
        (folder / "tmp" / temp).chmod(0o777)
    return folder


def conf(folder: Path, http: str, *, workers: str, connections: int) -> str:
    """A whole nginx.conf writing only below ``folder``, with ``http`` inside its ``http`` block."""
    temps = "".join(f"    {directive}_temp_path {folder / 'tmp' / temp};\n" for directive, temp in TEMP_PATHS)
    return (
        f"worker_processes {workers};\n"
        "worker_rlimit_nofile 65536;\n"
        f"pid {folder}/nginx.pid;\n"
        f"error_log {folder}/error.log warn;\n"
        f"events {{ worker_connections {connections}; }}\n"
        f"http {{\n{temps}{http.strip(chr(10))}\n}}\n"
    )


def start(folder: Path, http: str, *, workers: str, connections: int) -> subprocess.Popen[bytes]:
    """Writes ``folder/nginx.conf`` and starts NGINX on it in the foreground (stop it by its PID)."""
    path = folder / "nginx.conf"
    path.write_text(conf(folder, http, workers=workers, connections=connections))
    argv = ["nginx", "-e", str(folder / "error.log"), "-c", str(path), "-g", "daemon off;"]
    return subprocess.Popen(argv, cwd=folder)
