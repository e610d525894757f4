"""Reads and writes through NGINX to the app servers: which database server answers."""

import time

import pytest

from config.databases import PRIMARY_DB_ALIAS
from tests.cluster.replicas.conftest import reads_served_by

pytestmark = pytest.mark.cluster


def test_a_plain_get_is_served_by_the_replica_and_a_post_by_the_primary(new_user, old_probe):
    # given a user with no recent write
    user = new_user()
    # when it reads, then writes
    servers = reads_served_by(user, old_probe, 20)
    written = user.write()
    # then the replica answered every read and the primary took the write
    assert servers == ["replica"] * 20
    assert (written["alias"], written["server"]) == (PRIMARY_DB_ALIAS, "primary")


def test_each_user_reads_its_own_writes_under_load_while_others_read_the_replica(
    new_user, old_probe, primary_write_load
):
    # given another process writing to the primary, a few hundred rows a second
    primary_write_load(seconds=120, pause=0.002)
    writer, bystander = new_user(), new_user()
    stale, writer_servers, bystander_servers = [], [], []
    started = time.monotonic()
    # when a user writes then reads it back, 1,000 times, while another user reads an old row
    for iteration in range(1000):
        created = writer.write()
        if iteration % 50 == 49:
            time.sleep(0.3)  # now and then give the replica time to replay the write
        response = writer.read(created["id"])
        if response.status_code != 200:
            stale.append((iteration, response.status_code))
        else:
            writer_servers.append(response.json()["server"])
        if iteration % 10 == 0:
            other = bystander.read(old_probe)
            assert other.status_code == 200
            bystander_servers.append(other.json()["server"])
    took = time.monotonic() - started
    # then no read missed its own write, and the other user stayed on the replica (except while
    # the replica is measured over 100 ms behind: on this shared 2-core box replication can stall)
    assert stale == []
    assert len(writer_servers) == 1000
    # (and the cookie does not pin the writer: once the replica has its write, it reads there)
    assert writer_servers.count("replica") >= 1
    assert bystander_servers.count("replica") >= 0.8 * len(bystander_servers), bystander_servers
    print(
        f"1000 write+read pairs in {took:.1f} s; the writer's reads: "
        f"{writer_servers.count('replica')} replica, {writer_servers.count('primary')} primary"
    )


def test_a_made_up_position_does_not_pin_reads_to_the_primary(new_user, old_probe):
    # given a client that sends the largest position there is, unsigned
    user = new_user()
    user.session.headers["X-Replica-Min-LSN"] = "FFFFFFFF/FFFFFFFF"
    # when it reads a row every replica has
    servers = reads_served_by(user, old_probe, 20)
    # then the header is ignored: the replica answers
    assert servers == ["replica"] * 20


def test_the_servers_position_echoed_by_another_client_reads_the_write(new_user):
    # given a writer, and a reader with no cookie and no credentials of its own
    writer, reader = new_user(), new_user()
    misses = []
    for _ in range(50):
        # when the writer writes and the reader reads the row at once, sending back the
        # X-Replica-LSN value the write's response carried, unchanged
        response = writer.session.post(f"{writer.base}/replicas/debug/probes", timeout=10)
        assert response.status_code == 201, response.text
        read = reader.session.get(
            f"{reader.base}/replicas/debug/probes/{response.json()['id']}",
            headers={"X-Replica-Min-LSN": response.headers["X-Replica-LSN"]},
            timeout=10,
        )
        # then it finds the row (on the primary, or a replica that has replayed it)
        if read.status_code != 200:
            misses.append(read.status_code)
    assert misses == []
