"""The Socket.IO server: python-socketio's ASGI app under uvicorn, one process per app server.

- **Transport**: WebSocket only. Long-polling needs every request of a session to reach the same
  server (sticky sessions); the edge balances with ``least_conn``, so polling is refused.
- **Fan-out**: ``AsyncRedisManager`` subscribes to ``LIVE_CHANNEL`` on the broker Redis; an event
  published by any process (``live.events``) reaches the clients of that room on every server.
- **Auth**: the client sends ``{"token": "<bearer token>"}`` as the Socket.IO ``auth`` payload.
  The token is looked up with messaging's own selector (the API's lookup); a missing, wrong,
  expired or revoked token is refused at connect. A connection joins one room only: its
  church's. Tokens are checked again every ``LIVE_TOKEN_RECHECK_SECONDS``; a connection whose
  token stopped working, or whose staff member moved to another church, is disconnected.
- **Operations**: ``/health/live``, ``/health/ready`` (primary through PgBouncer, the broker
  Redis, not draining) and ``/metrics`` on the same port, with the app servers' own parts: the
  reports come from the health runner (``health.runner``: same checks, cache and JSON), the
  ``/metrics`` rule is ``config.observability.may_read_metrics``, the request id rule
  ``config.request_ids``; one JSON log line per connect and disconnect with the request id NGINX
  assigned.
- **Drain** on SIGTERM: the listening socket closes at once, so the edge's (and a kubelet's)
  next connect is refused and new clients go to another server; every client gets
  ``server.draining``, and their connections are closed over ``LIVE_DRAIN_SECONDS``; clients
  reconnect to the other servers. Events published while a client reconnects are not replayed:
  a client re-reads ``GET /api/messages?after=<last id>`` after every reconnect (ADR 0013).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, NoReturn

import h11  # noqa: F401 - uvicorn's HTTP/1.1 implementation below (http="h11"): fail at import if absent
import socketio
import uvicorn
import wsproto  # noqa: F401 - uvicorn's WebSocket implementation below (ws="wsproto"): fail at import if absent
from django.conf import settings
from django.db import close_old_connections
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from config.clients import Caller, client_address
from config.logging import request_id_var
from config.observability import may_read_metrics, metrics_registry
from config.redis_urls import pubsub_options
from config.request_ids import request_id_for
from health import runner
from health.report import Report, encode
from live import metrics
from live.events import NAMESPACE, church_room

logger = logging.getLogger("live.server")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

MAX_TOKEN_LENGTH = 512
DRAINING_EVENT = "server.draining"
# A connecting client waits for the answer to its token (the client library's default wait is
# 10 s): a slow or failing lookup is refused well inside that, with a reason, not left unanswered.
TOKEN_CHECK_TIMEOUT_SECONDS = 5.0


def staff_for_token(raw_token: str) -> tuple[int, int] | None:
    """(user id, church id) for a working bearer token, or None (runs in a worker thread).

    The API's own lookup: on the primary, through the cache that every revocation empties on
    every server (docs/adr/0010-token-lookup.md), so a recheck of every connection is cheap.
    """
    from messaging.tokens.selectors import staff_member_for_token

    close_old_connections()  # a connection past CONN_MAX_AGE or broken is replaced
    staff = staff_member_for_token(raw_token=raw_token)
    return None if staff is None else (staff.user_id, staff.church_id)


@dataclass
class Connection:
    token: str
    user_id: int
    church_id: int
    request_id: str
    connected_at: float = field(default_factory=time.monotonic)


class CountingRedisManager(socketio.AsyncRedisManager):
    """The Redis manager, counting each event handed to a client of this server."""

    async def _handle_emit(self, message: dict[str, Any]) -> None:
        room = message.get("room")
        namespace = message.get("namespace") or NAMESPACE
        if room is not None:
            recipients = sum(1 for _ in self.get_participants(namespace, room))
            if recipients:
                metrics.events_delivered.labels(event=str(message.get("event"))).inc(recipients)
        await super()._handle_emit(message)


class LiveServer:
    """The Socket.IO server, its operations endpoints and its drain."""

    def __init__(self) -> None:
        self.connections: dict[str, Connection] = {}
        self.draining = False
        origins = settings.LIVE_ALLOWED_ORIGINS
        self.sio = socketio.AsyncServer(
            async_mode="asgi",
            client_manager=CountingRedisManager(
                settings.LIVE_REDIS_URL,
                channel=settings.LIVE_CHANNEL,
                redis_options=pubsub_options(
                    settings.LIVE_REDIS_URL, socket_connect_timeout=settings.LIVE_REDIS_TIMEOUT_SECONDS
                ),
            ),
            transports=["websocket"],
            cors_allowed_origins=(origins if origins != ["*"] else "*") or None,
            max_http_buffer_size=settings.LIVE_MAX_MESSAGE_BYTES,
            ping_interval=settings.LIVE_PING_INTERVAL_SECONDS,
            ping_timeout=settings.LIVE_PING_TIMEOUT_SECONDS,
            logger=False,
            engineio_logger=False,
        )
        self.sio.on("connect", self.on_connect)
        self.sio.on("disconnect", self.on_disconnect)
        self.sio.on("whoami", self.on_whoami)
        self.app = socketio.ASGIApp(self.sio, other_asgi_app=self.operations, socketio_path="socket.io")

    # --- Socket.IO ------------------------------------------------------------------------

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: object) -> None:
        request_id = request_id_for(environ.get("HTTP_X_REQUEST_ID"))
        reset = request_id_var.set(request_id)
        try:
            if self.draining:
                self._refuse("refused-draining", "this server is draining: reconnect")
            raw_token = auth.get("token") if isinstance(auth, dict) else None
            if not isinstance(raw_token, str) or not 0 < len(raw_token) <= MAX_TOKEN_LENGTH:
                self._refuse("refused-token", "send the bearer token as auth={'token': ...}")
            try:
                staff = await asyncio.wait_for(
                    asyncio.to_thread(staff_for_token, raw_token), TOKEN_CHECK_TIMEOUT_SECONDS
                )
            except Exception:
                logger.exception("connect: the token could not be checked")
                self._refuse("refused-error", "the token could not be checked: reconnect")
            if staff is None:
                self._refuse("refused-token", "the token is not valid (wrong, expired or revoked)")
            user_id, church_id = staff
            self.connections[sid] = Connection(
                token=raw_token, user_id=user_id, church_id=church_id, request_id=request_id
            )
            await self.sio.enter_room(sid, church_room(church_id), namespace=NAMESPACE)
            metrics.connects.labels(outcome="accepted").inc()
            metrics.connections.inc()
            logger.info(
                "connect",
                extra={
                    "sid": sid,
                    "user_id": user_id,
                    "church_id": church_id,
                    "remote_addr": _client(environ),
                },
            )
        finally:
            request_id_var.reset(reset)

    async def on_whoami(self, sid: str, data: object = None) -> dict[str, object]:
        """Acknowledged with the server's name and the connection's church (diagnostics, tests)."""
        connection = self.connections.get(sid)
        return {
            "server": settings.APP_SERVER_NAME,
            "church_id": connection.church_id if connection else None,
            "draining": self.draining,
        }

    def _refuse(self, outcome: str, reason: str) -> NoReturn:
        metrics.connects.labels(outcome=outcome).inc()
        logger.info("connect refused", extra={"outcome": outcome})
        raise socketio.exceptions.ConnectionRefusedError(reason)

    async def on_disconnect(self, sid: str, reason: object = None) -> None:
        connection = self.connections.pop(sid, None)
        if connection is None:
            return
        metrics.connections.dec()
        reset = request_id_var.set(connection.request_id)
        try:
            logger.info(
                "disconnect",
                extra={
                    "sid": sid,
                    "church_id": connection.church_id,
                    "reason": str(reason),
                    "connected_seconds": round(time.monotonic() - connection.connected_at, 1),
                },
            )
        finally:
            request_id_var.reset(reset)

    async def recheck_tokens(self) -> None:
        """Every ``LIVE_TOKEN_RECHECK_SECONDS``, check every connection again (``recheck_once``)."""
        while True:
            await asyncio.sleep(settings.LIVE_TOKEN_RECHECK_SECONDS)
            await self.recheck_once()

    async def recheck_once(self) -> None:
        """Disconnect every connection whose token no longer works, or whose staff member now
        belongs to another church than the one whose room it joined; one lookup per token.

        A moved staff member's connection is closed rather than moved to the new room: it was
        authorised for one church, and a client that reconnects joins its current church's room
        and reads what it missed there (ADR 0013), instead of mixing two churches' streams.
        """
        tokens: dict[str, list[str]] = {}
        for sid, connection in list(self.connections.items()):
            tokens.setdefault(connection.token, []).append(sid)
        for raw_token, sids in tokens.items():
            try:
                staff = await asyncio.to_thread(staff_for_token, raw_token)
            except Exception:  # the database is away: keep the connections, ask next round
                logger.warning("token recheck failed", exc_info=True)
                return
            church_id = None if staff is None else staff[1]
            for sid in sids:
                current = self.connections.get(sid)
                if current is None or current.church_id == church_id:
                    continue
                reason = "token-invalid" if church_id is None else "church-changed"
                logger.info("recheck: disconnecting", extra={"sid": sid, "reason": reason})
                # A Socket.IO disconnect: the client does not reconnect by itself.
                await self.sio.disconnect(sid, namespace=NAMESPACE)

    # --- drain ----------------------------------------------------------------------------

    async def drain(self, server: uvicorn.Server, seconds: float) -> None:
        """Stop taking connections, tell clients to go, close theirs over ``seconds``, then exit."""
        self.draining = True
        for listener in getattr(server, "servers", []):
            listener.close()  # the edge's next connect is refused and goes to another server
        sids = list(self.connections)
        logger.info("SIGTERM: draining", extra={"connections": len(sids), "drain_seconds": seconds})
        await self.sio.emit(DRAINING_EVENT, {"reconnect": True}, namespace=NAMESPACE, ignore_queue=True)
        batches = max(1, min(len(sids), int(seconds * 10)))
        for index in range(batches):
            for sid in sids[index::batches]:
                await self._close_transport(sid)
            await asyncio.sleep(seconds / batches)
        logger.info("drain over: stopping")
        server.should_exit = True

    async def _close_transport(self, sid: str) -> None:
        """Close the client's WebSocket without a Socket.IO or Engine.IO goodbye.

        A client that receives a disconnect packet stays disconnected (it takes it for a
        deliberate one); a closed transport makes it reconnect, as after a network blip.
        """
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, NAMESPACE)
        socket = self.sio.eio.sockets.get(eio_sid) if eio_sid else None
        if socket is None:
            return
        with contextlib.suppress(Exception):
            await socket.close(wait=False, abort=True)
            await socket.queue.put(None)  # wakes the writer, which closes the WebSocket

    # --- operations endpoints ---------------------------------------------------------------

    async def operations(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return
        if scope["type"] != "http":
            return
        path, method = scope.get("path", ""), scope.get("method", "GET")
        if path in ("/health/live", "/health/ready", "/metrics") and method not in ("GET", "HEAD"):
            await _respond(send, 405, {"detail": "method not allowed"}, headers=[(b"allow", b"GET, HEAD")])
        elif path == "/health/live":
            live = runner.live_server_live_report(draining=self.draining, connections=len(self.connections))
            await _respond_report(send, live)
        elif path == "/health/ready":
            await _respond_report(send, await self.ready())
        elif path == "/metrics":
            if not may_read_metrics(Caller.from_scope(scope)):
                await _respond(send, 404, {"detail": "not found"})
            else:
                text = await asyncio.to_thread(lambda: generate_latest(metrics_registry()))
                await _respond_raw(send, 200, text, CONTENT_TYPE_LATEST)
        else:
            await _respond(send, 404, {"detail": "not found"})

    async def ready(self) -> Report:
        """The health runner's readiness of this server; its checks block, so in a worker thread."""
        return await asyncio.to_thread(
            runner.live_server_ready_report, draining=self.draining, connections=len(self.connections)
        )


def _client(environ: dict[str, Any]) -> str:
    """The client's address by the operator paths' rule (NGINX's X-Forwarded-For, from NGINX only)."""
    address = client_address(Caller.from_scope(environ.get("asgi.scope") or {}))
    return "" if address is None else str(address)


async def _respond_report(send: Send, report: Report) -> None:
    status, headers, body = encode(report)
    await _send(send, status, [(name.lower().encode(), value.encode()) for name, value in headers], body)


async def _respond(
    send: Send, status: int, body: dict[str, Any], *, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await _respond_raw(send, status, json.dumps(body).encode(), "application/json", headers)


async def _respond_raw(
    send: Send, status: int, body: bytes, content_type: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    standard = [(b"content-type", content_type.encode()), (b"cache-control", b"no-store")]
    await _send(send, status, [*standard, *(headers or [])], body)


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class DrainingServer(uvicorn.Server):
    """uvicorn, with SIGTERM starting the drain instead of an immediate shutdown."""

    def __init__(self, config: uvicorn.Config, live: LiveServer, drain_seconds: float) -> None:
        super().__init__(config)
        self.live = live
        self.drain_seconds = drain_seconds
        self.loop: asyncio.AbstractEventLoop | None = None
        self.draining_task: asyncio.Task[None] | None = None

    async def startup(self, sockets: Any = None) -> None:
        self.loop = asyncio.get_running_loop()
        await super().startup(sockets=sockets)
        self.recheck_task = asyncio.create_task(self.live.recheck_tokens())

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGTERM and self.loop is not None and not self.should_exit:
            if self.draining_task is None:
                self.loop.call_soon_threadsafe(self._start_drain)
            return
        super().handle_exit(sig, frame)

    def _start_drain(self) -> None:
        if self.draining_task is None:
            self.draining_task = asyncio.ensure_future(self.live.drain(self, self.drain_seconds))


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def run(*, binds: list[tuple[str, int]], drain_seconds: float | None = None) -> None:
    """Serve on every ``(host, port)`` in ``binds`` until SIGTERM (drain, then stop) or SIGINT.

    More than one address: a server reached both on loopback and on the address an edge in
    another network namespace connects to (the local cluster's edge pair, ADR 0020)."""
    live = LiveServer()
    host, port = binds[0]
    config = uvicorn.Config(
        live.app,
        host=host,
        port=port,
        ws="wsproto",  # sans-IO, already a dependency (simple-websocket); no C extension
        http="h11",
        ws_max_size=settings.LIVE_MAX_MESSAGE_BYTES,
        ws_ping_interval=None,  # Socket.IO has its own heartbeat
        # Browsers offer permessage-deflate; its zlib state would cost each idle connection far
        # more memory than the small JSON events it could save (ADR 0013).
        ws_per_message_deflate=False,
        lifespan="off",
        log_config=None,  # Django's LOGGING (JSON lines) already holds the root logger
        access_log=False,  # connects and disconnects are logged with their request ids instead
        # Off: uvicorn would put the forwarded address in place of the TCP peer, which the
        # operator paths' rule (config.clients) needs to decide whether to believe that header.
        proxy_headers=False,
        server_header=False,
        backlog=2048,
        timeout_graceful_shutdown=5,
    )
    server = DrainingServer(
        config, live, settings.LIVE_DRAIN_SECONDS if drain_seconds is None else drain_seconds
    )
    where = ",".join(f"{host}:{port}" for host, port in binds)
    logger.info("live server starting", extra={"bind": where, "channel": settings.LIVE_CHANNEL})
    server.run(sockets=[_listen(host, port) for host, port in binds] if len(binds) > 1 else None)
