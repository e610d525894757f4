"""The beat schedule: one dict, kebab-case keys, tick schedules, expiry below one interval."""

import pytest
from django.conf import settings

from jobs.schedules import TickSchedule

pytestmark = pytest.mark.unit


def test_every_job_is_scheduled_with_epoch_aligned_ticks_and_expires_within_an_interval():
    # given the schedule from settings
    schedule = settings.CELERY_BEAT_SCHEDULE

    # then every job is there: every minute, every 5 minutes, every minute and every hour by default
    assert set(schedule) == {"recurring-messages", "phone-linking-recovery", "messages-sweep", "retention"}
    assert schedule["recurring-messages"]["task"] == "jobs.recurring_messages"
    assert schedule["phone-linking-recovery"]["task"] == "jobs.phone_linking_recovery"
    assert schedule["messages-sweep"]["task"] == "jobs.messages_sweep"
    assert schedule["retention"]["task"] == "jobs.retention"
    intervals = {name: entry["schedule"].interval for name, entry in schedule.items()}
    assert intervals == {
        "recurring-messages": settings.JOBS_RECURRING_MESSAGES_INTERVAL_SECONDS,
        "phone-linking-recovery": settings.JOBS_PHONE_LINKING_RECOVERY_INTERVAL_SECONDS,
        "messages-sweep": settings.JOBS_MESSAGES_SWEEP_INTERVAL_SECONDS,
        "retention": settings.JOBS_RETENTION_INTERVAL_SECONDS,
    }
    for entry in schedule.values():
        assert isinstance(entry["schedule"], TickSchedule)
        # and a delivery older than one interval is dropped: catch-up runs its tick instead
        assert 0 < entry["options"]["expires"] < entry["schedule"].interval
    assert settings.CELERY_BEAT_SCHEDULER == "jobs.schedules:TickScheduler"


def test_intervals_come_from_the_environment(monkeypatch):
    import importlib

    import config.settings.components.jobs as component

    # given short intervals in the environment, as the cluster tests set them
    monkeypatch.setenv("JOBS_RECURRING_MESSAGES_INTERVAL_SECONDS", "1.5")
    monkeypatch.setenv("JOBS_PHONE_LINKING_RECOVERY_INTERVAL_SECONDS", "2")
    try:
        # when the component is read again
        reloaded = importlib.reload(component)

        # then the schedule uses them
        assert reloaded.CELERY_BEAT_SCHEDULE["recurring-messages"]["schedule"].interval == 1.5
        assert reloaded.CELERY_BEAT_SCHEDULE["phone-linking-recovery"]["schedule"].interval == 2.0
    finally:
        monkeypatch.undo()
        importlib.reload(component)


@pytest.mark.parametrize(
    ("module", "variable", "value"),
    [
        ("config.settings.components.jobs", "JOBS_RETENTION_JOB_RUNS_DAYS", "0.001"),
        ("config.settings.components.jobs", "JOBS_RETENTION_LOCK_GRANTS_DAYS", "0"),
        ("config.settings.components.jobs", "JOBS_RETENTION_BATCH_SIZE", "0"),
        ("config.settings.components.jobs", "JOBS_RETENTION_INTERVAL_SECONDS", "5"),
        ("config.settings.components.jobs", "JOBS_TICK_TOLERANCE_SECONDS", "-1"),
        ("config.settings.components.messaging", "MESSAGING_RETENTION_IDEMPOTENT_REQUESTS_DAYS", "0.5"),
        ("config.settings.components.messaging", "MESSAGING_RETENTION_EXPIRED_TOKENS_DAYS", "-1"),
        ("config.settings.components.locking", "LOCK_SPLIT_VOTE_RETRIES", "-1"),
        ("config.settings.components.locking", "LOCK_SPLIT_VOTE_DELAY", "0"),
    ],
)
def test_a_bad_retention_clock_or_retry_setting_stops_start_up_naming_it(
    monkeypatch, module, variable, value
):
    import importlib

    from django.core.exceptions import ImproperlyConfigured

    component = importlib.import_module(module)
    # given a value outside what the setting allows
    monkeypatch.setenv(variable, value)
    try:
        # when the settings are read, then start-up stops with one line naming the variable
        with pytest.raises(ImproperlyConfigured, match=variable):
            importlib.reload(component)
    finally:
        monkeypatch.undo()
        importlib.reload(component)


def test_every_scheduled_task_is_the_declared_job_of_that_name_at_its_interval():
    from config.celery import app
    from jobs.registry import JOBS, JobTask

    # given beat's schedule and the jobs the apps declared with @job(name=...)
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        # then each entry sends the task made for the job of its name, which ticks at the same interval
        task = app.tasks[entry["task"]]
        assert isinstance(task, JobTask)
        assert task.job is JOBS[name]
        assert JOBS[name].interval == entry["schedule"].interval
