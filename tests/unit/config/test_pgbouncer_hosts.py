"""DB_HOST / DB_PORT lists reach psycopg as one attempt per PgBouncer, through Django's backend
(ADR 0018): the settings, Django's ``get_connection_params`` and psycopg's own splitting."""

import json
import os
import subprocess
import sys

import pytest

from config.databases import connection_params
from deploy.local.cluster import REPO

pytestmark = pytest.mark.unit

# Run in a process of its own: the settings read the environment once, at import (and fill what
# it leaves unset from a local cluster's .cluster/cluster.env, so each test sets every DB_ value).
ATTEMPTS = """
import json, django
django.setup()
from django.db import connections
from psycopg._conninfo_attempts import conninfo_attempts
result = {}
for alias in ("default", "replica"):
    params = connections[alias].get_connection_params()
    orders = {tuple((a["host"], a["port"]) for a in conninfo_attempts(params)) for _ in range(40)}
    result[alias] = {
        "load_balance_hosts": params.get("load_balance_hosts"),
        "attempts": [[a["host"], a["port"]] for a in conninfo_attempts(params)],
        "orders": len(orders),
    }
print(json.dumps(result))
"""


def _attempts(**env: str) -> dict[str, dict[str, object]]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "PG_", "PGBOUNCER"))}
    result = subprocess.run(
        [sys.executable, "-c", ATTEMPTS],
        capture_output=True, text=True, timeout=60, cwd=REPO, check=True,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings.test", **env},
    )  # fmt: skip
    return dict(json.loads(result.stdout))


def test_two_pgbouncers_are_two_attempts_in_the_listed_order():
    found = _attempts(DB_HOST="127.0.0.1,127.0.0.1", DB_PORT="26432,26433", DB_LOAD_BALANCE_HOSTS="")
    assert found["default"] == {
        "load_balance_hosts": None,
        "attempts": [["127.0.0.1", "26432"], ["127.0.0.1", "26433"]],
        "orders": 1,
    }


def test_random_order_is_passed_on_and_shuffles_the_attempts():
    env = {"DB_HOST": "127.0.0.1,127.0.0.1", "DB_PORT": "26432,26433", "DB_LOAD_BALANCE_HOSTS": "random",
           "DB_REPLICA_HOST": "127.0.0.1,127.0.0.1", "DB_REPLICA_PORT": "25433,25437"}  # fmt: skip
    found = _attempts(**env)
    default, replica = found["default"], found["replica"]
    assert (default["load_balance_hosts"], replica["load_balance_hosts"]) == ("random", "random")
    assert isinstance(default["attempts"], list) and isinstance(replica["attempts"], list)
    assert sorted(default["attempts"]) == [["127.0.0.1", "26432"], ["127.0.0.1", "26433"]]
    assert sorted(replica["attempts"]) == [["127.0.0.1", "25433"], ["127.0.0.1", "25437"]]
    # both orders among 40 connections (all 40 alike by chance: 1 in 2**39)
    assert (default["orders"], replica["orders"]) == (2, 2)


def test_one_host_with_two_ports_is_that_host_on_each_port():
    found = _attempts(DB_HOST="127.0.0.1", DB_PORT="26432,26433", DB_LOAD_BALANCE_HOSTS="")
    assert found["default"]["attempts"] == [["127.0.0.1", "26432"], ["127.0.0.1", "26433"]]


def test_one_pgbouncer_alone_is_one_attempt():
    found = _attempts(DB_HOST="127.0.0.1", DB_PORT="6432", DB_LOAD_BALANCE_HOSTS="")
    assert found["default"]["attempts"] == [["127.0.0.1", "6432"]]


def test_the_projects_own_connections_keep_the_list_and_the_order_option():
    entry = {"NAME": "app", "HOST": "a.internal,b.internal", "PORT": "6432",
             "OPTIONS": {"load_balance_hosts": "random", "prepare_threshold": None}}  # fmt: skip
    params = connection_params(entry)
    assert (params["host"], params["port"], params["load_balance_hosts"]) == (
        "a.internal,b.internal",
        "6432",
        "random",
    )
