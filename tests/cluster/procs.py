"""Process helpers for the cluster tests."""

from pathlib import Path


def child_pids(pid: int) -> set[int]:
    """The PIDs whose parent is ``pid``, read from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, IndexError, ValueError):
                continue
            if parent == pid:
                found.add(int(entry.name))
    return found
