"""The local cluster: NGINX spreads over three app servers; replica, Redis and Celery work."""

import uuid

import psycopg
import pytest
import redis
from celery import Celery

from deploy.local.cluster import sentinel
from deploy.local.cluster.postgres import bootstrap_primary, psql
from tests.cluster.db import connect
from tests.support import wait_until

pytestmark = pytest.mark.cluster


def test_nginx_reaches_every_app_server(http, nginx_url, cluster_settings):
    # when
    served_by = {http.get(f"{nginx_url}/health", timeout=5).headers["X-Served-By"] for _ in range(60)}
    # then
    assert served_by == set(cluster_settings.server_names)


def test_plain_http_redirects_to_https_on_the_configured_name(
    http, cluster_settings, edge_network, nginx_url
):
    # given a plain-HTTP request to the virtual address naming another host the edge serves
    # (the local cluster's first name is the virtual address) / when it is sent
    response = http.get(
        f"http://{edge_network.vip}:{cluster_settings.nginx_http_port}/health",
        headers={"Host": "localhost"},
        allow_redirects=False,
        timeout=5,
    )
    # then it is sent to HTTPS on the configured name, not on whatever Host the client sent
    assert response.status_code == 301
    assert response.headers["Location"] == f"{nginx_url}/health"


def test_a_row_written_through_pgbouncer_is_visible_on_the_replica(cluster_settings):
    # given
    marker = uuid.uuid4().hex
    with connect(cluster_settings, cluster_settings.pgbouncer_port) as primary:
        primary.execute("CREATE TABLE IF NOT EXISTS cluster_probe (marker text PRIMARY KEY)")
        # when
        primary.execute("INSERT INTO cluster_probe (marker) VALUES (%s)", (marker,))
    # then
    with connect(cluster_settings, cluster_settings.pg_replica_port) as replica:
        (in_recovery,) = replica.execute("SELECT pg_is_in_recovery()").fetchone() or (None,)
        assert in_recovery is True
        found = wait_until(
            lambda: replica.execute(
                "SELECT marker FROM cluster_probe WHERE marker = %s", (marker,)
            ).fetchone(),
            timeout=5,
            interval=0.02,
            ignoring=(psycopg.errors.UndefinedTable,),  # the CREATE TABLE itself may still be on its way
            message="the row never reached the replica",
        )
    assert found == (marker,)


def test_every_redis_node_answers_the_app_user_and_refuses_anyone_without_a_password(cluster_settings):
    cfg = cluster_settings
    ports = [*cfg.lock_redis_ports, cfg.broker_redis_port, cfg.broker_replica_port, *cfg.sentinel_ports]
    for port in ports:
        assert redis.Redis.from_url(cluster_settings.redis_url(port), socket_timeout=2).ping() is True
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(host="127.0.0.1", port=port, socket_timeout=2).ping()
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(
                host="127.0.0.1", port=port, username="app", password="wrong", socket_timeout=2
            ).ping()


def test_a_celery_worker_runs_a_task(cluster_settings):
    # given: a client configured exactly like an app server of the cluster
    broker = sentinel.master_url(cluster_settings, 0)
    client = Celery(broker=broker, backend=broker)
    # when
    result = client.send_task("config.ping").get(timeout=30)
    # then
    assert result["server"] in cluster_settings.server_names


def test_running_up_again_keeps_the_password_secrets_pgbouncer_holds(cluster_settings):
    # given
    query = "SELECT string_agg(rolpassword, ',' ORDER BY rolname) FROM pg_authid WHERE rolcanlogin"
    before = psql(cluster_settings, query, step="read secrets")
    # when
    bootstrap_primary(cluster_settings)
    # then
    assert psql(cluster_settings, query, step="read secrets") == before
    with connect(cluster_settings, cluster_settings.pgbouncer_port) as through_pgbouncer:
        assert through_pgbouncer.execute("SELECT 1").fetchone() == (1,)
