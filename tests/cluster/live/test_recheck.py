"""The periodic recheck: a connection follows its staff member, not only its token."""

import time
import uuid

import pytest

from tests.cluster.live.conftest import PASSWORD, LiveConnectRefused, manage_shell

pytestmark = pytest.mark.cluster

_MOVE_STAFF = """
from messaging.models import Church, StaffMember
staff = StaffMember.objects.get(user__username={username!r})
staff.church = Church.objects.get(pk={church_id})
staff.save(update_fields=["church"])
print("moved")
"""

_ENSURE_STAFF = """
from messaging.contacts.services import staff_member_ensure
staff_member_ensure(church_name="Live test church A", username={username!r}, password={password!r})
print("ensured")
"""

_DELETE_USER = """
from django.contrib.auth import get_user_model
get_user_model().objects.filter(username={username!r}).delete()
print("deleted")
"""


@pytest.fixture
def mover(churches, cluster_settings):
    """A staff member of church A of this test's own (the shared ones are never moved)."""
    username = f"live-test-mover-{uuid.uuid4().hex[:12]}"
    manage_shell(cluster_settings, _ENSURE_STAFF.format(username=username, password=PASSWORD))
    yield username
    manage_shell(cluster_settings, _DELETE_USER.format(username=username))


def test_a_connection_whose_staff_member_moves_to_another_church_stops_hearing_the_old_one(
    churches, mover, live_client, session, nginx_url, post_inbound, cluster_settings
):
    # given: the mover connected, hearing church A
    login = session.post(
        f"{nginx_url}/auth/login", json={"username": mover, "password": PASSWORD}, timeout=10
    )
    assert login.status_code == 200, login.text
    token = login.json()["token"]
    client = live_client(token, reconnection=False)
    assert client.whoami()["church_id"] == churches["a"].id
    server = cluster_settings.server_names[0]
    before = post_inbound(server=server, to=churches["a"].phone, body="still yours")
    assert client.wait_for(lambda: before in client.seen_ids), client.events

    # when: the staff member is moved to church B (the token itself stays the same)
    manage_shell(cluster_settings, _MOVE_STAFF.format(username=mover, church_id=churches["b"].id))

    # then: the next recheck (every 2 s in the local cluster) closes the connection
    assert client.wait_for(lambda: not client.client.connected, timeout=15), client.disconnects
    after = post_inbound(server=server, to=churches["a"].phone, body="no longer yours")
    time.sleep(1.0)
    assert after not in client.seen_ids
    # and a new connection with that token hears church B, or is refused (a token that ended
    # with the reassignment): never church A again
    try:
        again = live_client(token, reconnection=False)
    except LiveConnectRefused as refused:
        messages = [str(r.get("message")) for r in refused.reasons if isinstance(r, dict)]
        assert messages and messages[0].startswith("the token is not valid"), refused
    else:
        assert again.whoami()["church_id"] == churches["b"].id
