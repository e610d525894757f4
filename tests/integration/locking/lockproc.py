"""A lock holder in its own process, for the cross-process tests (not a test module).

``lockproc.py hold NAME TTL``: acquire, print ``acquired TOKEN`` (or ``held``), then obey
commands read line by line from stdin: ``write VALUE`` (a fenced write of an auth Group named
VALUE; prints ``wrote`` or the exception's class), ``write-paused VALUE`` (the same, but stops
inside the fenced block, printing ``inside``, until one more line arrives), ``ensure``
(prints ``held`` or ``lost``), ``release`` (prints ``released True|False``), ``exit``.

``lockproc.py contend NAME ROUNDS LOGFILE``: ROUNDS times, wait for the lock, then append
``enter`` and ``leave`` lines with monotonic times around a read-modify-write of a counter
file, and release.

``lockproc.py race PREFIX ROUNDS SPACING ROTATE``: see ``race``.
"""

import os
import sys
import time
from pathlib import Path

import django

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
django.setup()

from django.contrib.auth.models import Group  # noqa: E402

from config.databases import PRIMARY_DB_ALIAS  # noqa: E402
from locking.errors import LockError  # noqa: E402
from locking.quorum import get_quorum  # noqa: E402
from locking.services import JobLock, acquire_job_lock, release_job_lock  # noqa: E402


def fenced_write(lock: JobLock, name: str, *, paused: bool) -> None:
    """Two writes in one fenced block; ``paused``: print ``inside`` after the first and wait for a
    line before the second. Prints ``wrote``, or the class of what stopped it."""
    try:
        with lock.fenced():
            Group.objects.using(PRIMARY_DB_ALIAS).create(name=name)
            if paused:
                print("inside", flush=True)
                sys.stdin.readline()
            Group.objects.using(PRIMARY_DB_ALIAS).create(name=f"{name}-second")
        print("wrote", flush=True)
    except Exception as exc:  # a refused fence, or the session PostgreSQL ended under a pause
        print(type(exc).__name__, flush=True)


def hold(name: str, ttl: float) -> None:
    lock = acquire_job_lock(name, ttl)
    if lock is None:
        print("held", flush=True)
        return
    print(f"acquired {lock.token}", flush=True)
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command in ("write", "write-paused"):
            fenced_write(lock, argument, paused=command == "write-paused")
        elif command == "ensure":
            try:
                lock.ensure_held()
                print("held", flush=True)
            except LockError:
                print("lost", flush=True)
        elif command == "release":
            print(f"released {release_job_lock(lock)}", flush=True)
        elif command == "exit":
            return


def contend(name: str, rounds: int, log: Path) -> None:
    counter = log.with_suffix(".counter")
    for _ in range(rounds):
        while (lock := acquire_job_lock(name, 5, audit=False, fence=False)) is None:
            time.sleep(0.005)
        try:
            with log.open("a") as out:
                out.write(f"enter {time.monotonic()}\n")
            value = int(counter.read_text()) if counter.exists() else 0
            time.sleep(0.01)  # widen the window a missing lock would lose an update in
            counter.write_text(str(value + 1))
            with log.open("a") as out:
                out.write(f"leave {time.monotonic()}\n")
        finally:
            release_job_lock(lock)


def race(prefix: str, rounds: int, spacing: float, rotate: int) -> None:
    """Print ``ready``, read the start instant (wall clock, the same for every racer) from stdin;
    then in round i, at ``start + i * spacing``, try the lock ``prefix-i`` once and print ``i won``
    or ``i lost``. Winners keep their locks until every round is over (a late racer must find
    them held, not free). ``rotate`` shifts the order this racer writes to the nodes in, as if
    each were nearest to another node: racers that reach different nodes first split votes."""
    quorum = get_quorum()
    quorum.nodes = quorum.nodes[rotate:] + quorum.nodes[:rotate]
    print("ready", flush=True)
    start_at = float(sys.stdin.readline())
    won = []
    for index in range(rounds):
        time.sleep(max(0.0, start_at + index * spacing - time.time()))
        lock = acquire_job_lock(f"{prefix}-{index}", 60, audit=False, fence=False)
        print(f"{index} {'won' if lock is not None else 'lost'}", flush=True)
        if lock is not None:
            won.append(lock)
    sys.stdin.readline()  # the parent says when every racer is done
    for lock in won:
        release_job_lock(lock)


if __name__ == "__main__":
    if sys.argv[1] == "hold":
        hold(sys.argv[2], float(sys.argv[3]))
    elif sys.argv[1] == "race":
        race(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]))
    else:
        contend(sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]))
