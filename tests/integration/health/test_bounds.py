"""Every dependency call ends within its budget, whether the dependency is stopped or hung.

A hung dependency is played by a socket that accepts connections and never answers, which is
what a SIGSTOPped Redis or PostgreSQL looks like to a client; the cluster tests pause the real
ones too.
"""

import time
from functools import partial

import pytest
from django.db import connections

from config import postgres
from config.databases import PRIMARY_DB_ALIAS
from health import checks
from health.exceptions import ServiceUnavailable, Status
from health.runner import Check, run_checks

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("port_fixture", ["hung_port", "closed_port"])
def test_a_redis_ping_to_a_stopped_or_hung_node_ends_within_its_timeout(port_fixture, request):
    # given
    port = request.getfixturevalue(port_fixture)
    started = time.monotonic()

    # when
    with pytest.raises(ServiceUnavailable) as problem:
        checks.redis_response_time(
            url=f"redis://127.0.0.1:{port}/0", timeout=0.5, deadline=time.monotonic() + 0.5
        )

    # then
    assert time.monotonic() - started < 1.0
    assert problem.value.output in ("timed out", "unreachable")


@pytest.mark.django_db
def test_a_query_the_server_never_answers_is_abandoned_at_the_deadline():
    # given: a real connection through PgBouncer and a query that outlasts the budget
    connection = postgres.connect(connections.settings[PRIMARY_DB_ALIAS], timeout=1.0)
    started = time.monotonic()

    # when
    try:
        with pytest.raises(postgres.QueryUnavailable, match="timed out"):
            postgres.fetch_rows(connection, "SELECT pg_sleep(5)", deadline=started + 0.5)
    finally:
        postgres.close_quietly(connection)

    # then
    assert time.monotonic() - started < 1.0


def test_a_database_that_accepts_and_never_answers_counts_as_failed_within_the_budget(hung_port):
    # given: a database alias whose server accepts TCP and never speaks
    hung = {**connections.settings[PRIMARY_DB_ALIAS], "HOST": "127.0.0.1", "PORT": hung_port}
    connections.settings["hung"] = hung
    probe = Check("database:responseTime", partial(checks.database_response_time, alias="hung"), "hung")
    started = time.monotonic()

    # when
    try:
        (result,) = run_checks([probe], timeout=0.5)
    finally:
        del connections.settings["hung"]

    # then
    assert time.monotonic() - started < 1.0
    assert (result.status, result.output) == (Status.FAIL, "timed out")
