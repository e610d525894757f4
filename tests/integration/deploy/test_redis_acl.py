"""Each Redis role's app user may run what its role needs and nothing that reconfigures, wipes or
walks a node (issue 22, item 9): checked on throwaway servers running the local cluster's ACL
lines, with the app's own clients (the lock quorum, kombu, django-redis, pub/sub), and on the
running cluster's nodes with the settings' credentials."""

import uuid

import pytest
import redis
from django.conf import settings
from django.core.management import call_command
from django_redis.cache import RedisCache
from kombu import Connection

from config.redis_urls import node_urls
from locking.quorum import LockQuorum, Outcome
from tests.integration.deploy.redis_nodes import acl_file_node, redis_node

pytestmark = pytest.mark.integration

REFUSED = [
    ("CONFIG", "GET", "maxmemory"),
    ("CONFIG", "SET", "maxmemory", "1"),
    ("FLUSHALL",),
    ("FLUSHDB",),
    ("KEYS", "*"),
    ("DEBUG", "SLEEP", "0"),
    ("SHUTDOWN", "NOSAVE"),
    ("ACL", "SETUSER", "intruder", "on", ">pw", "+@all"),
    ("REPLICAOF", "127.0.0.1", "1"),
    ("MONITOR",),
]


@pytest.fixture(scope="module")
def lock_url(cluster_settings, tmp_path_factory):
    with redis_node(cluster_settings, "lock", tmp_path_factory.mktemp("redis-lock")) as url:
        yield url


@pytest.fixture(scope="module")
def broker_url(cluster_settings, tmp_path_factory):
    with redis_node(cluster_settings, "broker", tmp_path_factory.mktemp("redis-broker")) as url:
        yield url


def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


@pytest.mark.parametrize("command", REFUSED, ids=lambda command: " ".join(command[:2]))
@pytest.mark.parametrize("role", ["lock", "broker"])
def test_the_app_user_is_refused_the_admin_commands(request, role, command):
    url = request.getfixturevalue(f"{role}_url")
    with pytest.raises(redis.exceptions.NoPermissionError):
        _client(url).execute_command(*command)
    assert _client(url).ping() is True  # and the node is still there


def test_the_lock_user_serves_the_lock_service_on_lock_keys_only(lock_url):
    # given the app's lock quorum on a node with the lock role's user
    quorum = LockQuorum(
        [lock_url],
        key_prefix="lock:",
        connect_timeout=1,
        socket_timeout=1,
        retry_interval=1,
        drift_factor=0.01,
    )
    name, owner = f"acl-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    # when it takes, extends, inspects, lists and releases a lock
    assert quorum.acquire(name, owner, 5_000).outcome is Outcome.GRANTED
    assert quorum.extend(name, owner, 5_000).outcome is Outcome.GRANTED
    assert quorum.holder(quorum.inspect(name)) is not None
    (listed,) = quorum.scan()
    assert f"lock:{name}" in listed.value
    assert all(reply.error is None for reply in quorum.release(name, owner))
    # then a key outside the lock prefixes is refused
    with pytest.raises(redis.exceptions.NoPermissionError):
        _client(lock_url).set("messages:1", "x")
    # and a script cannot reach one either
    with pytest.raises(redis.exceptions.NoPermissionError):
        _client(lock_url).eval("return redis.call('set', KEYS[1], 'x')", 1, "messages:1")


def test_the_broker_user_carries_queues_results_cache_and_pubsub(broker_url):
    # Celery's transport: a queue round trip through kombu
    with Connection(broker_url, transport_options={"visibility_timeout": 60}) as connection:
        queue = connection.SimpleQueue(f"acl-test-{uuid.uuid4().hex[:8]}")
        queue.put({"hello": "queue"})
        message = queue.get(timeout=5)
        assert message.payload == {"hello": "queue"}
        message.ack()
        queue.queue.delete()
        queue.close()
    # django-redis, as the login counters and the token cache use it
    cache = RedisCache(broker_url.rsplit("/", 1)[0] + "/1", {"KEY_PREFIX": f"acl-{uuid.uuid4().hex[:8]}"})
    cache.set("seen", 1, timeout=30)
    assert cache.incr("seen") == 2
    assert cache.get("seen") == 2
    cache.delete_pattern("*")
    assert cache.get("seen") is None
    # pub/sub, as Socket.IO's manager and Celery's broadcasts use it
    client = _client(broker_url)
    pubsub = client.pubsub()
    pubsub.subscribe("live-acl-test")
    assert pubsub.get_message(timeout=2)["type"] == "subscribe"
    assert client.publish("live-acl-test", "hello") == 1
    assert pubsub.get_message(timeout=2)["data"] == b"hello"
    pubsub.close()


def test_the_running_clusters_app_users_are_refused_config():
    # the nodes `make up` started; a node started before the role users needs a restart (`make up`
    # restarts any node whose app user may still run CONFIG)
    for url in [*settings.LOCK_REDIS_URLS, *node_urls(settings.BROKER_REDIS_URL, socket_timeout=2)]:
        with pytest.raises(redis.exceptions.NoPermissionError):
            _client(url).config_get("maxmemory")


def test_the_production_acl_files_load_in_redis_and_hold(tmp_path, monkeypatch):
    # given the files render_deploy writes for production (hashed passwords)
    for name, value in {"LOCK_REDIS_USERNAME": "app-lock", "LOCK_REDIS_PASSWORD": "lock-pw",
                        "BROKER_REDIS_USERNAME": "app-broker", "BROKER_REDIS_PASSWORD": "broker-pw",
                        "REDIS_REPLICATION_PASSWORD": "replication-pw",
                        "REDIS_SENTINEL_PASSWORD": "sentinel-pw"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    call_command("render_deploy", "redis", "--out", str(tmp_path))
    for role, user, password, allowed in (
        ("lock", "app-lock", "lock-pw", ("SET", "lock:job:x", "1", "NX", "PX", "1000")),
        ("broker", "app-broker", "broker-pw", ("LPUSH", "celery", "{}")),
        ("broker", "replication", "replication-pw", ("PING",)),
    ):
        # when a server loads them
        with acl_file_node(tmp_path / f"{role}-users.acl", tmp_path) as port:
            client = redis.Redis(port=port, username=user, password=password, socket_timeout=2)
            # then the user logs in with its password, runs its own commands, and no admin one
            assert client.execute_command(*allowed)
            with pytest.raises(redis.exceptions.NoPermissionError):
                client.config_get("maxmemory")
            with pytest.raises(redis.exceptions.AuthenticationError):
                redis.Redis(port=port, username=user, password="wrong", socket_timeout=2).ping()
