"""What Redis Sentinel says about the broker now: its master, its failovers, its redundancy (ADR 0019).

Read by the detailed health report and, at every scrape of ``/metrics``, by ``BrokerCollector``:
two short commands (``SENTINEL MASTER``, ``SENTINEL REPLICAS``) per Sentinel, each bounded by a
timeout, with the app's own Sentinel user (which may read, never steer). The nodes are never
asked: the app's user on them may not run ``INFO`` or ``ROLE``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from redis.backoff import NoBackoff
from redis.retry import Retry

from config import redis_urls

# A replica that can take over: Sentinel sees it up and its link to the master works.
_UNUSABLE_FLAGS = {"s_down", "o_down", "disconnected"}


@dataclass(frozen=True)
class BrokerState:
    master: str  # host:port of the master Sentinel names now
    epoch: int  # Sentinel's configuration epoch: one more at each failover or switchover
    replicas: int  # replicas in sync with that master
    sentinels: int  # Sentinels that answered


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _fields(reply: Any) -> dict[str, str]:
    """redis-py answers a dict (RESP2 parsing of SENTINEL MASTER) or a flat list of names and values."""
    if isinstance(reply, dict):
        return {_text(key): _text(value) for key, value in reply.items()}
    items = [_text(item) for item in reply]
    return dict(zip(items[::2], items[1::2], strict=True))


def broker_state(url: str, *, timeout: float) -> BrokerState | None:
    """The broker's state as the Sentinels of ``url`` (``redis+sentinel://``) report it, or None
    when none answers or none knows the master's name."""
    name = redis_urls.sentinel_master_name(url)
    # No retries: a Sentinel that does not answer at once is skipped (redis-py retries with backoff).
    manager = redis_urls.sentinel(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )
    masters: list[dict[str, str]] = []
    replicas = 0
    try:
        for node in manager.sentinels:
            try:
                master = _fields(node.execute_command("SENTINEL", "MASTER", name))
                found = [_fields(replica) for replica in node.execute_command("SENTINEL", "REPLICAS", name)]
            except redis.RedisError:
                continue  # a Sentinel down, or one that does not know the name
            if not masters:
                replicas = sum(
                    1
                    for replica in found
                    if not _UNUSABLE_FLAGS & set(replica.get("flags", "").split(","))
                    and replica.get("master-link-status") == "ok"
                )
            masters.append(master)
    finally:
        for node in manager.sentinels:
            node.close()
    if not masters:
        return None
    # A Sentinel restarted a moment ago reports an old epoch until its peers tell it the new one.
    newest = max(masters, key=lambda master: int(master.get("config-epoch", 0)))
    return BrokerState(
        master=f"{newest['ip']}:{newest['port']}",
        epoch=int(newest.get("config-epoch", 0)),
        replicas=replicas,
        sentinels=len(masters),
    )


class BrokerCollector(Collector):
    """The broker's Sentinel state as gauges, read at scrape time (alerts: deploy/monitoring)."""

    def __init__(self, url: str, *, timeout: float = 0.5) -> None:
        self.url = url
        self.timeout = timeout

    def collect(self) -> Iterable[GaugeMetricFamily]:
        state = broker_state(self.url, timeout=self.timeout)
        yield GaugeMetricFamily(
            "app_broker_master_known", "1 when a Sentinel names the broker's master, 0 when none does.",
            value=0 if state is None else 1,
        )  # fmt: skip
        if state is None:
            return
        yield GaugeMetricFamily(
            "app_broker_failover_epoch",
            "Sentinel's configuration epoch for the broker: it goes up at each failover or switchover.",
            value=state.epoch,
        )
        yield GaugeMetricFamily(
            "app_broker_replicas", "Broker replicas in sync with the master, as Sentinel sees them.",
            value=state.replicas,
        )  # fmt: skip
        yield GaugeMetricFamily("app_broker_sentinels", "Sentinels that answered.", value=state.sentinels)
