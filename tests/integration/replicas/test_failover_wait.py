"""The primary's backend waits a bounded time for a database that is failing over, and only while
opening a connection (replicas/backend/base.py).

The database's address is a forwarder of this test's own in front of the cluster's PgBouncer:
closed (as while HAProxy has no leader to send to), opened later (the new leader), or cutting
the connections it carries (the leader dying under a running statement).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from django.db import OperationalError, connections
from django.test import override_settings

from config.databases import PRIMARY_DB_ALIAS
from deploy.local import cluster
from deploy.local.host import free_port
from replicas.backend.base import DatabaseWrapper

pytestmark = pytest.mark.integration


def _bound_below_32768() -> socket.socket:
    """A socket bound to a free port of the project's range (never the kernel's ephemeral one)."""
    for _ in range(20):
        # Without SO_REUSEADDR: no other process can bind the port while it is ours (Linux lets
        # two sockets share a port only when both ask to). A range the side servers of other
        # test sessions rarely reach.
        listener = socket.socket()
        try:
            listener.bind(("127.0.0.1", free_port(range(31000, 32000))))
        except OSError:  # taken between the look and the bind
            listener.close()
            continue
        return listener
    raise RuntimeError("no free port to bind")


class Forwarder:
    """A TCP forwarder from a port of its own to ``target``; opened and cut by the test."""

    def __init__(self, target: int) -> None:
        # Bound at once, listening only once opened: the port is ours (other test sessions take
        # free ports too), and until then the kernel refuses connections to it.
        self._listener: socket.socket | None = _bound_below_32768()
        self.port = self._listener.getsockname()[1]
        self.target = target
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def open(self) -> None:
        assert self._listener is not None
        self._listener.listen(16)
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            with self._lock:
                self._sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Close every carried connection, as a dying server's kernel does."""
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                    sock.close()
            self._sockets.clear()

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self.cut()


@pytest.fixture
def forwarder(cluster_settings: cluster.Settings) -> Iterator[Forwarder]:
    forward = Forwarder(cluster_settings.pgbouncer_port)
    yield forward
    forward.close()


@pytest.fixture
def primary_through(django_db_blocker, cluster_settings: cluster.Settings) -> Iterator[DatabaseWrapper]:
    """The primary alias's backend, pointed at an address the test controls (set ``PORT``)."""
    settings_dict = {**connections[PRIMARY_DB_ALIAS].settings_dict, "NAME": cluster_settings.db_name}
    wrapper = DatabaseWrapper(settings_dict, alias=PRIMARY_DB_ALIAS)
    with django_db_blocker.unblock():
        yield wrapper
        wrapper.close()


def _select_one(wrapper: DatabaseWrapper) -> int:
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT 1")
        return int(cursor.fetchone()[0])


@override_settings(DB_FAILOVER_WAIT_SECONDS=6)
def test_a_new_connection_waits_for_the_database_to_come_back(primary_through, forwarder):
    # given the database's address refuses connections, and opens 1.5 s later
    primary_through.settings_dict["PORT"] = forwarder.port
    threading.Timer(1.5, forwarder.open).start()
    # when the backend connects
    started = time.monotonic()
    answer = _select_one(primary_through)
    waited = time.monotonic() - started
    # then it waited for the database and did not give up
    print(f"connected after {waited:.2f} s")
    assert answer == 1
    assert 1.5 <= waited < 4.0


@override_settings(DB_FAILOVER_WAIT_SECONDS=1.5)
def test_the_wait_is_bounded(primary_through, forwarder):
    # given the database never comes back
    primary_through.settings_dict["PORT"] = forwarder.port
    # when the backend connects, then it fails once the wait has passed, not before nor long after
    started = time.monotonic()
    with pytest.raises(OperationalError):
        _select_one(primary_through)
    waited = time.monotonic() - started
    assert 1.2 <= waited < 3.0


@override_settings(DB_FAILOVER_WAIT_SECONDS=6)
def test_a_statement_on_a_connection_that_dies_fails_at_once_and_is_not_sent_again(
    primary_through, forwarder
):
    # given a connection through the forwarder
    forwarder.open()
    primary_through.settings_dict["PORT"] = forwarder.port
    assert _select_one(primary_through) == 1
    # when every connection it carries is cut (the database died), and the next statement is sent
    forwarder.cut()
    started = time.monotonic()
    with pytest.raises(OperationalError), primary_through.cursor() as cursor:
        cursor.execute("SELECT 2")
    # then the statement failed at once: only opening a connection waits
    assert time.monotonic() - started < 1.0
