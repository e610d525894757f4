import io

import pytest
from django.core.management import call_command

from tests.integration.replicas.conftest import REPLICA_DB

pytestmark = [pytest.mark.integration, REPLICA_DB]


def test_replicas_status_prints_an_aligned_row_per_replica_and_exits_0_when_all_serve(measured, settings):
    # given a replica that answers, and a lag limit a busy shared machine's replay delay stays
    # under (the command's verdict on lag is tests/cluster/replicas/test_lag_measure.py's)
    settings.REPLICA_MAX_LAG_MS = 60_000
    out, err = io.StringIO(), io.StringIO()
    # when
    code: int | str | None = 0
    try:
        call_command("replicas", "status", stdout=out, stderr=err)
    except SystemExit as exited:
        code = exited.code
    # then
    assert code == 0, out.getvalue() + err.getvalue()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("primary WAL position: ")
    header, row = lines[1], lines[2]
    assert header.split()[:5] == ["replica", "state", "lag", "ms", "replay"]
    assert row.split()[:2] == ["replica", "healthy"]
    assert header.index("replay lsn") == row.index(row.split()[3])  # columns line up


def test_replicas_status_exits_1_naming_a_replica_that_does_not_answer(measured):
    # given the replica alias pointing at a port where nothing listens
    from django.db import connections

    from replicas.monitor import monitor

    replica = connections.settings["replica"]
    port, replica["PORT"] = replica["PORT"], 25999
    monitor._drop_connection("replica")
    out, err = io.StringIO(), io.StringIO()
    try:
        # when
        with pytest.raises(SystemExit) as exited:
            call_command("replicas", "status", stdout=out, stderr=err)
    finally:
        replica["PORT"] = port
        monitor._drop_connection("replica")
        monitor.refresh()
    # then
    assert exited.value.code == 1
    assert "unreachable" in out.getvalue()
    assert "not serving reads: replica" in err.getvalue()
