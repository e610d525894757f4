"""Live updates under load: idle Socket.IO connections, their memory, webhook-to-client latency.

    .venv/bin/python -m bench.live.bench_live --out FILE            # 2,000 connections, 50 msg/s
    .venv/bin/python -m bench.live.bench_live --quick --out FILE    # seconds (the test suite's)

Against the running local cluster, through its NGINX (with the rate-limit bypass header, like
every load generator here):

1. opens ``--connections`` idle Socket.IO connections of one church, spread over the live
   servers by NGINX's ``least_conn``. They are held by a small asyncio client in this process
   (TLS, WebSocket via wsproto offering compression as browsers do, the Engine.IO/Socket.IO
   handshake with the bearer token in ``auth``, and the pong to every ping), so thousands cost
   this side little;
2. reads each live server's resident memory (``/proc/PID/status`` VmRSS) before and after, and
   its ``app_live_connections``: memory per idle connection is the growth divided by the
   connections it took;
3. while they stay open, posts signed inbound SMS at ``--rate`` per second for ``--seconds``
   through NGINX to another church, three of whose staff are connected with python-socketio's
   own client: each event's time from the start of its webhook POST to its arrival at each
   listener gives p50/p99, and any message that never arrives is counted as lost.

It writes a markdown report (``--out``); ``make bench`` runs it as one of its micro-benchmarks.
Goals (issue 14): p99 under 100 ms, under 50 KB of server memory per idle connection.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import requests
import socketio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Ping, RejectConnection, Request, TextMessage
from wsproto.extensions import PerMessageDeflate

from bench.servers import login_token, manage_shell
from deploy.local import cluster
from deploy.local.host import raise_file_limit

PASSWORD = "bench-live-password"  # noqa: S105 - the benchmark's own local staff users
# Two churches: the idle connections belong to one, the measured events to the other, so the
# idle ones stay idle (an event reaches only its church's room).
CHURCHES = {"idle": ("Bench live idle church", "bench-live-idle", "+16465550191"),
            "events": ("Bench live events church", "bench-live-events", "+16465550192")}  # fmt: skip

_ENSURE = """
import json
from messaging.models import PhoneLink
from messaging.contacts.services import staff_member_ensure
out = {}
for key, (church, username, phone) in %r.items():
    staff = staff_member_ensure(church_name=church, username=username, password=%r)
    link = {"church": staff.church, "state": PhoneLink.State.LINKED}
    PhoneLink.objects.get_or_create(phone=phone, defaults=link)
    out[key] = staff.church_id
print(json.dumps(out))
"""


@dataclass
class Result:
    connections_wanted: int
    connections_open: int = 0
    connect_seconds: float = 0.0
    per_server: dict[str, int] = field(default_factory=dict)
    rss_before_kb: dict[str, int] = field(default_factory=dict)
    rss_after_kb: dict[str, int] = field(default_factory=dict)
    posted: int = 0
    post_errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    webhook_ms: list[float] = field(default_factory=list)
    insert_to_client_ms: list[float] = field(default_factory=list)
    lost: int = 0
    listeners: int = 0
    rate: float = 0.0
    seconds: float = 0.0
    idle_dropped: int = 0


# --- a tiny idle Socket.IO client ------------------------------------------------------------


class IdleClient:
    """One Socket.IO connection over TLS + WebSocket that answers pings and nothing else."""

    def __init__(self, *, host: str, port: int, token: str, bypass: str, context: ssl.SSLContext) -> None:
        self.host, self.port, self.token, self.bypass, self.context = host, port, token, bypass, context
        self.connected = asyncio.Event()
        self.failed: str | None = None
        self.closed = False

    async def run(self, stop: asyncio.Event) -> None:
        try:
            reader, writer = await asyncio.open_connection(
                self.host, self.port, ssl=self.context, server_hostname=self.host
            )
        except OSError as error:
            self.failed = f"connect: {error}"
            self.connected.set()
            return
        ws = WSConnection(ConnectionType.CLIENT)
        target = "/socket.io/?EIO=4&transport=websocket"
        headers = [(b"x-ratelimit-bypass", self.bypass.encode())]
        writer.write(ws.send(_request(f"{self.host}:{self.port}", target, headers)))
        pending = ""
        reading = asyncio.ensure_future(reader.read(65536))
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while True:
                done, _ = await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if stopping in done:
                    break
                data = reading.result()
                if not data:
                    break
                ws.receive_data(data)
                for event in ws.events():
                    if isinstance(event, TextMessage):
                        pending += event.data
                        if not event.message_finished:
                            continue
                        packet, pending = pending, ""
                        reply = self._handle(packet)
                        if reply is not None:
                            writer.write(ws.send(TextMessage(data=reply)))
                    elif isinstance(event, Ping):
                        writer.write(ws.send(event.response()))
                    elif isinstance(event, RejectConnection):
                        self.failed = f"rejected: {event.status_code}"
                        self.connected.set()
                        return
                    elif isinstance(event, CloseConnection):
                        return
                    elif isinstance(event, AcceptConnection):
                        pass
                await writer.drain()
                reading = asyncio.ensure_future(reader.read(65536))
        except (OSError, ssl.SSLError) as error:
            self.failed = self.failed or f"io: {error}"
        finally:
            self.closed = True
            self.connected.set()
            for task in (reading, stopping):
                task.cancel()
            writer.close()

    def _handle(self, packet: str) -> str | None:
        if packet.startswith("0"):  # Engine.IO open: connect the default namespace with auth
            return "40" + json.dumps({"token": self.token})
        if packet.startswith("40"):
            self.connected.set()
        elif packet.startswith("44"):
            self.failed = f"refused: {packet[2:]}"
            self.connected.set()
        elif packet == "2":  # ping
            return "3"
        return None


def _request(host: str, target: str, headers: list[tuple[bytes, bytes]]) -> Request:
    # Offers compression as browsers do, so the server's answer to it is part of what is measured.
    return Request(host=host, target=target, extra_headers=headers, extensions=[PerMessageDeflate()])


async def hold_idle(
    count: int, *, host: str, port: int, token: str, bypass: str, context: ssl.SSLContext,
    ready: threading.Event, stop_flag: threading.Event, out: dict[str, object],
) -> None:  # fmt: skip
    stop = asyncio.Event()
    clients = [
        IdleClient(host=host, port=port, token=token, bypass=bypass, context=context) for _ in range(count)
    ]
    gate = asyncio.Semaphore(64)  # at most this many handshakes at once
    tasks = []
    started = time.monotonic()

    async def open_one(client: IdleClient) -> None:
        async with gate:
            tasks.append(asyncio.ensure_future(client.run(stop)))
            await client.connected.wait()

    await asyncio.gather(*(open_one(client) for client in clients))
    out["connect_seconds"] = time.monotonic() - started
    out["open"] = sum(1 for c in clients if c.failed is None and not c.closed)
    out["failures"] = sorted({c.failed for c in clients if c.failed})[:3]
    ready.set()
    while not stop_flag.is_set():
        await asyncio.sleep(0.2)
    out["dropped_while_held"] = sum(1 for c in clients if c.closed and c.failed is None)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)


# --- the measurement -------------------------------------------------------------------------


def ensure_churches(cfg: cluster.Settings) -> dict[str, int]:
    return dict(manage_shell(cfg, _ENSURE % (CHURCHES, PASSWORD)))


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def live_servers(cfg: cluster.Settings) -> dict[str, tuple[int, int]]:
    """server -> (live server PID, port)."""
    table = cluster.services(cfg)
    found = {}
    for server, port in zip(cfg.server_names, cfg.live_ports, strict=True):
        pid = cluster.recorded_pid(table[f"live-{server}"], cfg)
        if pid is None:
            raise SystemExit(f"live-{server} is not running: start the cluster with 'make up'")
        found[server] = (pid, port)
    return found


def open_connections(port: int) -> int:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith("app_live_connections "):
            return int(float(line.split()[1]))
    return 0


def webhook(
    session: requests.Session, url: str, secret: str, to: str, sent_at: dict[str, float], index: int
) -> float | None:
    """POST one signed inbound SMS; its response time in ms, or None when it failed."""
    from messaging.inbound.webhooks import webhook_headers

    provider_id = f"bench-live-{uuid.uuid4().hex}"
    body = json.dumps({"message_id": provider_id, "from": "+12125550188", "to": to, "body": f"bench {index}"})
    data = body.encode()
    headers = {"Content-Type": "application/json", **webhook_headers(body=data, secret=secret)}
    started = sent_at[provider_id] = time.perf_counter()
    try:
        ok = session.post(url, data=data, headers=headers, timeout=10).status_code == 200
    except requests.RequestException:
        ok = False
    return (time.perf_counter() - started) * 1000 if ok else None


def restart_live_servers(cfg: cluster.Settings) -> None:
    """Fresh processes: an allocator keeps freed memory, so a server that held connections
    before would hide the cost of new ones."""
    for server in cfg.server_names:
        cluster.restart(f"live-{server}", cfg)


def measure(*, connections: int, rate: float, seconds: float, fresh: bool = False) -> Result:
    raise_file_limit()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    import django

    django.setup()
    from django.conf import settings

    cfg = cluster.Settings()
    result = Result(connections_wanted=connections, rate=rate, seconds=seconds)
    bypass = cfg.ratelimit_bypass_token()
    nginx = cfg.edge_url()
    edge_host = urlsplit(nginx).hostname or ""
    cert = str(cfg.state_dir / "nginx" / "tls.crt")
    http = requests.Session()
    http.trust_env = False
    http.verify = cert
    http.headers["X-RateLimit-Bypass"] = bypass
    ensure_churches(cfg)
    tokens = {
        key: login_token(
            nginx, {"username": username, "password": PASSWORD}, {"X-RateLimit-Bypass": bypass}, cert
        )
        for key, (_, username, _) in CHURCHES.items()
    }
    if fresh:
        restart_live_servers(cfg)
        time.sleep(6.0)  # NGINX counts the restart's refused connects for fail_timeout (5 s)
    servers = live_servers(cfg)
    before_counts = {name: open_connections(port) for name, (_, port) in servers.items()}
    result.rss_before_kb = {name: rss_kb(pid) for name, (pid, _) in servers.items()}

    # 1. the idle connections, held by an event loop in a thread of their own
    context = ssl.create_default_context(cafile=cert)
    ready, stop_flag = threading.Event(), threading.Event()
    held: dict[str, object] = {}
    holder = threading.Thread(
        target=lambda: asyncio.run(hold_idle(connections, host=edge_host, port=cfg.nginx_https_port,
                                             token=tokens["idle"], bypass=bypass, context=context,
                                             ready=ready, stop_flag=stop_flag, out=held)),
        daemon=True,
    )  # fmt: skip
    holder.start()
    if not ready.wait(timeout=600):
        raise SystemExit("the idle connections did not open within 10 minutes")
    result.connections_open = int(str(held["open"]))
    result.connect_seconds = float(str(held["connect_seconds"]))
    if held.get("failures"):
        print(f"bench: some connections failed: {held['failures']}", file=sys.stderr)
    time.sleep(3.0)  # let the servers settle (handshake buffers freed)
    result.per_server = {
        name: open_connections(port) - before_counts[name] for name, (_, port) in servers.items()
    }
    result.rss_after_kb = {name: rss_kb(pid) for name, (pid, _) in servers.items()}

    # 2. latency: listeners of the other church, webhooks through NGINX at a steady rate
    arrived: dict[str, list[float]] = {}
    lock = threading.Lock()
    listeners = []
    for _ in range(3):
        client = socketio.Client(http_session=http, reconnection=False)

        def on_inbound(payload: dict[str, object]) -> None:
            now, wall = time.perf_counter(), time.time()
            created = datetime.fromisoformat(str(payload["created_at"]).replace("Z", "+00:00")).timestamp()
            with lock:
                arrived.setdefault(str(payload.get("provider_message_id")), []).append(now)
                result.insert_to_client_ms.append((wall - created) * 1000)

        client.on("message.inbound", on_inbound)
        client.connect(nginx, auth={"token": tokens["events"]}, transports=["websocket"],
                       headers={"X-RateLimit-Bypass": bypass}, wait_timeout=10)  # fmt: skip
        listeners.append(client)
    result.listeners = len(listeners)
    sent_at: dict[str, float] = {}
    total = max(1, int(rate * seconds))
    url = f"{nginx}/webhooks/sms/inbound"
    to = CHURCHES["events"][2]
    posting = requests.Session()
    posting.trust_env = False
    posting.verify = cert
    posting.headers["X-RateLimit-Bypass"] = bypass
    adapter = requests.adapters.HTTPAdapter(pool_connections=16, pool_maxsize=16)
    posting.mount("https://", adapter)
    with ThreadPoolExecutor(max_workers=16) as pool:
        start = time.perf_counter()
        futures = []
        for index in range(total):
            delay = start + index / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            futures.append(
                pool.submit(webhook, posting, url, settings.MESSAGING_WEBHOOK_SECRET, to, sent_at, index)
            )
        answers = [future.result() for future in futures]
    result.webhook_ms = [ms for ms in answers if ms is not None]
    result.posted = len(result.webhook_ms)
    result.post_errors = len(answers) - result.posted
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with lock:
            if all(len(arrived.get(pid, [])) >= len(listeners) for pid in sent_at):
                break
        time.sleep(0.1)
    with lock:
        for provider_id, t0 in sent_at.items():
            times = arrived.get(provider_id, [])
            result.latencies_ms.extend((t - t0) * 1000 for t in times)
            result.lost += len(listeners) - len(times)
    for client in listeners:
        client.disconnect()
    stop_flag.set()
    holder.join(timeout=60)
    result.idle_dropped = int(str(held.get("dropped_while_held", 0)))
    return result


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def report(result: Result, *, quick: bool, fresh: bool) -> str:
    growth_kb = sum(result.rss_after_kb[s] - result.rss_before_kb[s] for s in result.rss_after_kb)
    taken = sum(result.per_server.values())
    per_connection = growth_kb / taken if taken else float("nan")
    p50, p99 = percentile(result.latencies_ms, 0.50), percentile(result.latencies_ms, 0.99)
    spread = ", ".join(f"{name} {count:,}" for name, count in result.per_server.items())
    memory = ", ".join(
        f"{name} {result.rss_before_kb[name] / 1024:.0f} → {result.rss_after_kb[name] / 1024:.0f} MB"
        for name in result.rss_after_kb
    )
    met = lambda ok: "met" if ok else "**not met**"  # noqa: E731
    lines = [
        f"# Live updates (Socket.IO) benchmark{' — quick run' if quick else ''}",
        "",
        f"{result.connections_wanted:,} idle connections of one church through NGINX; then "
        f"{result.rate:g} inbound SMS a second for {result.seconds:g} s through NGINX's webhook route "
        "to another church, "
        f"{result.listeners} of whose staff listen (python-socketio client). Load average at the end: "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} (the machine is shared).",
        "",
        "| measured | figure | goal |",
        "|---|---|---|",
        f"| idle connections open | {result.connections_open:,} of {result.connections_wanted:,} in "
        f"{result.connect_seconds:.1f} s; per server: {spread} | |",
        f"| connections dropped while held idle | {result.idle_dropped:,} | 0 |",
        f"| server memory per idle connection | {per_connection:.1f} KB (RSS growth "
        f"{growth_kb / 1024:.1f} MB over {taken:,} connections; {memory}) | "
        f"< 50 KB: {met(per_connection < 50)} |",
        f"| webhook → client p50 / p99 | {p50:.1f} / {p99:.1f} ms over {len(result.latencies_ms):,} "
        f"deliveries ({result.posted:,} webhooks, {result.post_errors} failed) | "
        f"p99 < 100 ms: {met(p99 < 100)} |",
        f"| same run, baseline: the webhook POST's own response time p50 / p99 | "
        f"{percentile(result.webhook_ms, 0.5):.1f} / "
        f"{percentile(result.webhook_ms, 0.99):.1f} ms | |",
        f"| the event's own path: row inserted (its `created_at`) → client p50 / p99 | "
        f"{percentile(result.insert_to_client_ms, 0.5):.1f} / "
        f"{percentile(result.insert_to_client_ms, 0.99):.1f} ms | |",
        f"| events lost (a listener never got one) | {result.lost} | 0 |",
        "",
        "Latency is from the start of the webhook POST (signed, through NGINX to an app server, "
        "committed, published on the broker Redis) to the event's arrival at a listener "
        "(through the listener's live server and NGINX). Memory is each live server's resident "
        "set (`VmRSS`) before the connections and 3 s after the last one opened"
        + (
            ", the servers freshly restarted."
            if fresh
            else " (not restarted first: a figure of a quick run)."
        ),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Live updates benchmark (bench/live/bench_live.py).")
    parser.add_argument("--quick", action="store_true", help="a few connections for a few seconds")
    parser.add_argument("--connections", type=int, default=None)
    parser.add_argument("--rate", type=float, default=50.0, help="inbound SMS per second")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--fresh-servers",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="restart the live servers first, for a clean memory figure (default: on, off with --quick)",
    )
    args = parser.parse_args(argv)
    connections = args.connections or (60 if args.quick else 2000)
    seconds = args.seconds or (2.0 if args.quick else 20.0)
    fresh = (not args.quick) if args.fresh_servers is None else args.fresh_servers
    result = measure(connections=connections, rate=args.rate, seconds=seconds, fresh=fresh)
    text = report(result, quick=args.quick, fresh=fresh)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0 if result.connections_open and result.posted else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
