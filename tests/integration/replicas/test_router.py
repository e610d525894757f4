"""The router against the real primary (through PgBouncer) and the real streaming replica."""

import dataclasses
import logging
import time

import pytest
from django.db import connections, router, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from config.databases import PRIMARY_DB_ALIAS
from replicas import routing
from replicas.context import unit_of_work, use_primary_db
from replicas.models import RoutingProbe
from replicas.monitor import monitor
from replicas.selectors import routing_counts, routing_probe_read
from replicas.services import routing_probe_create
from tests.integration.replicas.conftest import REPLICA_DB, primary_lsn, wait_replayed

pytestmark = [pytest.mark.integration, REPLICA_DB]


def test_a_read_in_a_request_without_writes_is_served_by_the_replica(measured, replayed_probe):
    # given a row the replica has replayed
    probe = replayed_probe()
    # when a fresh unit of work reads it
    with unit_of_work():
        read = routing_probe_read(probe_id=probe.pk)
    # then the replica answered (the same query asked pg_is_in_recovery())
    assert read is not None
    assert (read.alias, read.server) == ("replica", "replica")


def test_a_write_goes_to_the_primary_and_later_reads_in_that_unit_too(measured):
    with unit_of_work():
        # when
        probe = routing_probe_create(note="w")
        read = routing_probe_read(probe_id=probe.pk)
    # then
    assert probe._state.db == PRIMARY_DB_ALIAS
    assert read is not None
    assert (read.alias, read.server) == (PRIMARY_DB_ALIAS, "primary")


def test_reads_inside_a_transaction_on_the_primary_stay_on_the_primary(measured, replayed_probe):
    probe = replayed_probe()
    with unit_of_work(), transaction.atomic():
        read = routing_probe_read(probe_id=probe.pk)
    assert read is not None
    assert read.server == "primary"


def test_nested_use_primary_db_forces_the_primary_until_the_outer_block_ends(measured, replayed_probe):
    probe = replayed_probe()
    with unit_of_work():
        with use_primary_db:
            with use_primary_db():
                inner = routing_probe_read(probe_id=probe.pk)
            after_inner = routing_probe_read(probe_id=probe.pk)
        after_outer = routing_probe_read(probe_id=probe.pk)
    assert [r.server for r in (inner, after_inner, after_outer) if r] == ["primary", "primary", "replica"]


@override_settings(REPLICA_READ_YOUR_WRITES_SECONDS=0.3)
def test_outside_any_request_a_write_sends_reads_to_the_primary_for_the_window(measured):
    # given a write with no request or task around it
    probe = routing_probe_create(note="base")
    # when read at once, then after the window (the replica has it by then)
    at_once = routing_probe_read(probe_id=probe.pk)
    time.sleep(0.35)
    wait_replayed(primary_lsn())
    monitor.refresh()
    later = routing_probe_read(probe_id=probe.pk)
    # then
    assert at_once is not None and at_once.server == "primary"
    assert later is not None and later.server == "replica"


def test_a_user_whose_write_the_replica_lacks_reads_from_the_primary_asking_the_replica_once(measured):
    # given a read position the replica has not reached (far ahead of the primary)
    unreachable_position = primary_lsn() + 10**12
    with (
        unit_of_work(min_lsn=unreachable_position, window_seconds=5) as state,
        CaptureQueriesContext(connections["replica"]) as on_replica,
    ):
        # when two reads are routed
        first = router.db_for_read(RoutingProbe)
        asked_after_first = len(on_replica)
        second = router.db_for_read(RoutingProbe)
    # then both go to the primary, and the replica was asked for its position once
    assert (first, second) == (PRIMARY_DB_ALIAS, PRIMARY_DB_ALIAS)
    assert asked_after_first == 1
    assert len(on_replica) == 1
    assert "pg_last_wal_replay_lsn" in on_replica[0]["sql"]
    assert state.replicas_behind == {"replica"}


def test_a_user_whose_write_the_replica_has_replayed_reads_from_the_replica(measured, settings):
    # given a write made after the last measurement, and replayed since (with a lag limit that a
    # busy machine does not cross between two measurements: this is about the position re-check)
    settings.REPLICA_MAX_LAG_MS = 60_000
    with unit_of_work():
        probe = routing_probe_create(note="ryw")
        position = primary_lsn()
    wait_replayed(position)
    # when the next request carries that position
    with (
        unit_of_work(min_lsn=position, window_seconds=5),
        CaptureQueriesContext(connections["replica"]) as on_replica,
    ):
        read = routing_probe_read(probe_id=probe.pk)
    # then the replica was re-checked once (the cache predates the write) and served the row
    assert read is not None and read.server == "replica"
    assert on_replica[0]["sql"].startswith("SELECT pg_last_wal_replay_lsn()")


def test_routing_a_read_costs_no_round_trip_while_the_measurement_is_fresh(measured):
    # given a fresh measurement
    snapshot = monitor.snapshot()
    with (
        unit_of_work(),
        CaptureQueriesContext(connections[PRIMARY_DB_ALIAS]) as on_primary,
        CaptureQueriesContext(connections["replica"]) as on_replica,
    ):
        # when the router decides 500 reads
        aliases = {router.db_for_read(RoutingProbe) for _ in range(500)}
    # then no query went anywhere and the monitor did not measure again
    assert aliases == {"replica"}
    assert len(on_primary) == 0
    assert len(on_replica) == 0
    assert monitor.snapshot() is snapshot


def test_with_no_healthy_replica_reads_go_to_the_primary_logged_once_and_counted(measured, caplog):
    # given the only replica marked unreachable (as a failed query marks it)
    before = routing_counts()
    monitor.mark_unreachable("replica", "OperationalError: test")
    with unit_of_work(), caplog.at_level(logging.WARNING, logger="replicas.routing"):
        # when five reads are routed
        aliases = [router.db_for_read(RoutingProbe) for _ in range(5)]
        # and the replica then measures healthy again
        monitor.refresh()
        back = router.db_for_read(RoutingProbe)
    after = routing_counts()
    # then
    assert aliases == [PRIMARY_DB_ALIAS] * 5
    assert back == "replica"
    reason = routing.NO_HEALTHY_REPLICA
    fallbacks = after["by_reason"].get(reason, 0) - before["by_reason"].get(reason, 0)
    assert fallbacks == 5
    assert after["outages"] == before["outages"] + 1
    messages = [r.getMessage() for r in caplog.records]
    assert sum("no healthy read replica" in m for m in messages) == 1
    assert sum("healthy again" in m for m in messages) == 1


def test_an_unreachable_replica_is_measured_as_such_within_one_refresh(measured):
    # given the replica alias pointing at a port where nothing listens
    replica = connections.settings["replica"]
    port = replica["PORT"]
    monitor._drop_connection("replica")
    replica["PORT"] = 25999
    try:
        # when
        started = time.monotonic()
        snapshot = monitor.refresh()
        took = time.monotonic() - started
        routed = router.db_for_read(RoutingProbe)
    finally:
        replica["PORT"] = port
        monitor._drop_connection("replica")
        monitor.refresh()
    # then
    assert snapshot.replicas["replica"].status == "unreachable"
    assert routed == PRIMARY_DB_ALIAS
    assert took < 1.0


def test_migrations_only_on_the_primary_and_relations_across_aliases_allowed():
    # given
    replica_row, primary_row, other_row = RoutingProbe(), RoutingProbe(), RoutingProbe()
    replica_row._state.db, primary_row._state.db, other_row._state.db = (
        "replica",
        PRIMARY_DB_ALIAS,
        "elsewhere",
    )
    # then
    assert router.allow_migrate(PRIMARY_DB_ALIAS, "replicas") is True
    assert router.allow_migrate("replica", "replicas") is False
    assert router.allow_relation(replica_row, primary_row) is True
    assert router.allow_relation(replica_row, other_row) is False  # Django's default for unknown aliases


def test_reads_go_to_the_primary_while_the_measurement_is_too_old_to_trust(measured):
    # given a refresh stuck (as on a frozen server) and a measurement three intervals old
    stale = dataclasses.replace(measured, taken_at=time.monotonic() - 3.5)
    with monitor._refresh_lock:
        monitor._snapshot = stale
        with unit_of_work():
            # when a read is routed
            while_stuck = router.db_for_read(RoutingProbe)
    # then it goes to the primary; once measuring works again, back to the replica
    monitor.refresh()
    with unit_of_work():
        recovered = router.db_for_read(RoutingProbe)
    assert (while_stuck, recovered) == (PRIMARY_DB_ALIAS, "replica")
