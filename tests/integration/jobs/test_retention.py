"""Retention through the real executor: what is older than the settings goes, in fenced batches,
from the ledger, the lock audit and messaging's tables; what is younger (or still held) stays;
the run shows what it deleted in the admin."""

import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client

from config.databases import PRIMARY_DB_ALIAS
from jobs.models import JobRun, Outcome
from jobs.registry import JOBS
from jobs.retention import PRUNERS
from jobs.schedules import tick_of
from jobs.selectors import database_now
from jobs.services import job_execute
from locking.models import LockGrant
from messaging.models import ApiToken, IdempotentRequest
from tests.integration.messaging.factories import ChurchFactory, UserFactory

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

DAY = timedelta(days=1)


def ledger_row(started, job="some-job"):
    return JobRun.objects.using(PRIMARY_DB_ALIAS).create(
        job=job, tick=started, outcome=Outcome.SUCCESS, started=started, finished=started, server="s", pid=1
    )


def grant(acquired, outcome=LockGrant.Outcome.RELEASED, expires=None):
    return LockGrant.objects.using(PRIMARY_DB_ALIAS).create(
        name="some-lock",
        owner=uuid.uuid4().hex,
        server="s",
        pid=1,
        ttl_ms=1000,
        acquired=acquired,
        expires=expires or acquired,
        outcome=outcome,
    )


def idempotent_request(church, created_at):
    record = IdempotentRequest.objects.create(church=church, key=uuid.uuid4().hex, request_fingerprint="f")
    IdempotentRequest.objects.filter(pk=record.pk).update(created_at=created_at)
    return record


def token(user, expires_at):
    return ApiToken.objects.create(user=user, key_hash=uuid.uuid4().hex, expires_at=expires_at)


@pytest.fixture
def retention(settings):
    settings.JOBS_RETENTION_JOB_RUNS_DAYS = 30.0
    settings.JOBS_RETENTION_LOCK_GRANTS_DAYS = 30.0
    settings.JOBS_RETENTION_BATCH_SIZE = 2  # several batches for the five old rows below
    settings.MESSAGING_RETENTION_IDEMPOTENT_REQUESTS_DAYS = 7.0
    settings.MESSAGING_RETENTION_EXPIRED_TOKENS_DAYS = 1.0
    return settings


def test_the_retention_job_deletes_only_what_is_older_than_its_settings(retention):
    # given rows on both sides of every limit
    now = database_now()
    old_runs = [ledger_row(now - 40 * DAY - timedelta(minutes=i)) for i in range(5)]
    young_run = ledger_row(now - 20 * DAY)
    old_grant = grant(now - 40 * DAY)
    vanished_holder = grant(now - 40 * DAY, outcome=LockGrant.Outcome.HELD, expires=now - 40 * DAY)
    still_held = grant(now - 40 * DAY, outcome=LockGrant.Outcome.HELD, expires=now + DAY)
    young_grant = grant(now - 20 * DAY)
    church = ChurchFactory.create()
    old_request, young_request = (
        idempotent_request(church, now - 8 * DAY),
        idempotent_request(church, now - DAY),
    )
    user = UserFactory.create()
    long_expired, just_expired, valid = (
        token(user, now - 3 * DAY),
        token(user, now - DAY / 4),
        token(user, now + DAY),
    )

    # when the retention job runs its tick
    report = job_execute(job=JOBS["retention"], tick=tick_of(now, 3600))

    # then the old rows are gone and the others stay
    assert report.outcome == Outcome.SUCCESS
    assert not JobRun.objects.filter(pk__in=[run.pk for run in old_runs]).exists()
    assert JobRun.objects.filter(pk=young_run.pk).exists()
    assert set(LockGrant.objects.filter(name="some-lock").values_list("pk", flat=True)) == {
        still_held.pk,
        young_grant.pk,
    }
    assert old_grant.pk != vanished_holder.pk
    assert list(IdempotentRequest.objects.values_list("pk", flat=True)) == [young_request.pk]
    assert old_request.pk != young_request.pk
    assert set(ApiToken.objects.values_list("pk", flat=True)) == {just_expired.pk, valid.pk}
    assert long_expired.pk not in {just_expired.pk, valid.pk}
    # and its ledger row says how many rows of each table it deleted
    run = JobRun.objects.get(job="retention", outcome=Outcome.SUCCESS)
    assert run.counts == {
        "jobs.JobRun": 5,
        "locking.LockGrant": 2,
        "messaging.ApiToken": 1,
        "messaging.IdempotentRequest": 1,
    }


def test_every_process_knows_the_retention_job_and_messagings_pruners():
    # the jobs and messaging apps register them at start-up (AppConfig.ready)
    assert "retention" in JOBS
    assert set(PRUNERS) == {
        "jobs.JobRun",
        "locking.LockGrant",
        "messaging.ApiToken",
        "messaging.IdempotentRequest",
    }


@pytest.mark.django_db(transaction=True, databases=[PRIMARY_DB_ALIAS, "replica"])  # the admin's session reads
def test_the_admin_shows_the_last_retention_run_and_what_it_deleted(retention):
    # given a retention run that deleted an old ledger row
    now = database_now()
    ledger_row(now - 40 * DAY)
    job_execute(job=JOBS["retention"], tick=tick_of(now, 3600))
    admin = User.objects.create_superuser("retention-admin", "a@example.com", "pw")
    client = Client()
    client.force_login(admin)
    # when
    page = client.get("/admin/jobs/retentionrun/")
    # then
    assert page.status_code == 200
    assert b"jobs.JobRun" in page.content
    assert b"success" in page.content
    assert client.post("/admin/jobs/retentionrun/add/").status_code == 403
