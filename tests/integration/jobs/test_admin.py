"""The ledger in the admin: a filterable list with durations, and nothing an operator can change."""

from datetime import UTC, datetime, timedelta

import pytest

from jobs.models import JobRun, Outcome

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

TICK = datetime(2026, 3, 8, 10, 0, tzinfo=UTC)


@pytest.fixture
def runs():
    common = {"job": "recurring-messages", "tick": TICK, "pid": 42, "started": TICK}
    return [
        JobRun.objects.create(
            outcome=Outcome.SUCCESS,
            server="app1",
            lock_token=7,
            finished=TICK + timedelta(seconds=1.5),
            **common,
        ),
        JobRun.objects.create(outcome=Outcome.SKIPPED_HELD, server="app2", finished=TICK, **common),
        JobRun.objects.create(
            outcome=Outcome.SKIPPED_UNAVAILABLE, server="app3", finished=TICK, error="no quorum", **common
        ),
        JobRun.objects.create(
            **{**common, "job": "phone-linking-recovery"},
            outcome=Outcome.SUCCESS,
            server="app1",
            finished=TICK,
        ),
    ]


def test_the_list_shows_every_delivery_with_its_duration_and_filters(admin_client, runs):
    # when an operator opens the run list
    page = admin_client.get("/admin/jobs/jobrun/")

    # then every delivery is there with its outcome and duration, and the filters are offered
    assert page.status_code == 200
    body = page.content.decode()
    assert "1.500s" in body
    for text in ("skipped-held", "skipped-unavailable", "app1", "app2", "app3"):
        assert text in body
    for parameter in ("?job=", "?outcome__exact=", "?server="):
        assert parameter in body


def test_filtering_by_outcome_shows_only_the_skips_of_that_kind(admin_client, runs):
    # when the operator filters on "lock quorum unavailable"
    page = admin_client.get("/admin/jobs/jobrun/", {"outcome__exact": "skipped-unavailable"})

    # then only that delivery is listed
    assert page.status_code == 200
    assert list(page.context["cl"].result_list) == [runs[2]]


def test_the_ledger_is_read_only(admin_client, runs):
    # when the operator tries to add, change or delete a run
    add = admin_client.get("/admin/jobs/jobrun/add/")
    change = admin_client.post(f"/admin/jobs/jobrun/{runs[0].pk}/change/", {"outcome": "failed"})
    delete = admin_client.post(f"/admin/jobs/jobrun/{runs[0].pk}/delete/", {"post": "yes"})

    # then nothing is allowed and the row is unchanged
    assert add.status_code == 403
    assert delete.status_code == 403
    assert change.status_code in (302, 403)
    runs[0].refresh_from_db()
    assert runs[0].outcome == Outcome.SUCCESS
    assert admin_client.get(f"/admin/jobs/jobrun/{runs[0].pk}/change/").status_code == 200  # viewable
