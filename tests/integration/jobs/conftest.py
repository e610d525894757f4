"""Fixtures for the jobs integration tests: private lock keys, test jobs with their own interval."""

import uuid
from collections.abc import Callable

import pytest

from jobs.context import Body, Job


@pytest.fixture(autouse=True)
def private_lock_keys(settings):
    """Lock keys no cluster worker (running the real jobs) or parallel test run shares."""
    settings.LOCK_KEY_PREFIX = f"test-jobs-{uuid.uuid4().hex[:10]}:"


@pytest.fixture
def job_settings(settings):
    """Short, fast settings for a test job: a 60 s tick, a 5-tick window, quick retries."""
    settings.JOBS_TEST_INTERVAL_SECONDS = 60.0
    settings.JOBS_CATCH_UP_WINDOW_SECONDS = 300.0
    settings.JOBS_LOCK_TTL_SECONDS = 5.0
    settings.JOBS_MAX_ATTEMPTS = 3
    settings.JOBS_RETRY_BACKOFF_SECONDS = 0.5
    settings.JOBS_RETRY_BACKOFF_MAX_SECONDS = 2.0
    return settings


@pytest.fixture
def make_job(job_settings) -> Callable[[Body], Job]:
    def make(body: Body, name: str = "") -> Job:
        return Job(
            name=name or f"test-{uuid.uuid4().hex[:8]}",
            interval_setting="JOBS_TEST_INTERVAL_SECONDS",
            body=body,
        )

    return make
