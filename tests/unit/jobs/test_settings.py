"""The beat schedule, built from the declared jobs: kebab-case keys, tick schedules, expiry below one
interval; the settings the jobs read."""

import pytest
from django.conf import settings

from jobs.schedules import TickSchedule

pytestmark = pytest.mark.unit


def test_every_job_is_scheduled_with_epoch_aligned_ticks_and_expires_within_an_interval():
    # given the schedule from settings, built from the declared jobs
    schedule = settings.CELERY_BEAT_SCHEDULE

    # then every job is there: every minute, every 5 minutes, every minute and every hour by default
    assert set(schedule) == {"recurring-messages", "phone-linking-recovery", "messages-sweep", "retention"}
    assert schedule["recurring-messages"]["task"] == "messaging.recurring_messages"
    assert schedule["phone-linking-recovery"]["task"] == "messaging.phone_linking_recovery"
    assert schedule["messages-sweep"]["task"] == "messaging.messages_sweep"
    assert schedule["retention"]["task"] == "jobs.retention"
    intervals = {name: entry["schedule"].interval for name, entry in schedule.items()}
    assert intervals == {
        "recurring-messages": settings.MESSAGING_RECURRING_MESSAGES_INTERVAL_SECONDS,
        "phone-linking-recovery": settings.MESSAGING_PHONE_LINKING_RECOVERY_INTERVAL_SECONDS,
        "messages-sweep": settings.MESSAGING_SWEEP_INTERVAL_SECONDS,
        "retention": settings.JOBS_RETENTION_INTERVAL_SECONDS,
    }
    for entry in schedule.values():
        assert isinstance(entry["schedule"], TickSchedule)
        # and a delivery older than one interval is dropped: catch-up runs its tick instead
        assert 0 < entry["options"]["expires"] < entry["schedule"].interval
        assert entry["options"]["queue"] == settings.JOBS_QUEUE
    assert settings.CELERY_BEAT_SCHEDULER == "jobs.schedules:TickScheduler"


def test_the_schedule_follows_the_interval_settings(settings):
    # given short intervals, as the cluster tests set them
    settings.MESSAGING_RECURRING_MESSAGES_INTERVAL_SECONDS = 1.5
    settings.MESSAGING_PHONE_LINKING_RECOVERY_INTERVAL_SECONDS = 2.0

    # when beat reads its schedule, then the entries tick at them and expire within them
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["recurring-messages"]["schedule"].interval == 1.5
    assert schedule["phone-linking-recovery"]["schedule"].interval == 2.0
    assert schedule["recurring-messages"]["options"]["expires"] == 1.35
    assert schedule["phone-linking-recovery"]["options"]["expires"] == 1.8


def test_a_declared_job_brings_its_entry_named_in_its_apps_namespace(settings):
    from jobs.registry import JOBS, job

    # given a job body in a module of the "tests" package, with an interval setting of its own
    settings.TESTS_DECLARED_INTERVAL_SECONDS = 30.0

    def declared_body(ctx: object) -> None:
        raise AssertionError("never run here")

    try:
        # when it is declared with its interval and expiry
        job(name="declared-here", interval="TESTS_DECLARED_INTERVAL_SECONDS", expires=0.5)(declared_body)

        # then beat's schedule has its entry, built from the declaration
        entry = settings.CELERY_BEAT_SCHEDULE["declared-here"]
        assert entry["task"] == "tests.declared_here"
        assert entry["schedule"].interval == 30.0
        assert entry["options"] == {"expires": 15.0, "queue": settings.JOBS_QUEUE}
    finally:
        JOBS.pop("declared-here", None)


@pytest.mark.parametrize(
    ("variable", "setting"),
    [
        ("MESSAGING_RECURRING_MESSAGES_INTERVAL_SECONDS", "MESSAGING_RECURRING_MESSAGES_INTERVAL_SECONDS"),
        ("JOBS_RECURRING_MESSAGES_INTERVAL_SECONDS", "MESSAGING_RECURRING_MESSAGES_INTERVAL_SECONDS"),
        ("JOBS_PHONE_LINKING_RECOVERY_INTERVAL_SECONDS", "MESSAGING_PHONE_LINKING_RECOVERY_INTERVAL_SECONDS"),
        ("JOBS_MESSAGES_SWEEP_INTERVAL_SECONDS", "MESSAGING_SWEEP_INTERVAL_SECONDS"),
        ("JOBS_RECURRING_MESSAGES_BATCH_SIZE", "MESSAGING_RECURRING_MESSAGES_BATCH_SIZE"),
        ("JOBS_PHONE_LINK_STUCK_AFTER_SECONDS", "MESSAGING_PHONE_LINK_STUCK_AFTER_SECONDS"),
        ("JOBS_PHONE_LINK_MAX_ATTEMPTS", "MESSAGING_PHONE_LINK_MAX_ATTEMPTS"),
        ("JOBS_PHONE_LINK_BACKOFF_SECONDS", "MESSAGING_PHONE_LINK_BACKOFF_SECONDS"),
        ("JOBS_PHONE_LINK_BACKOFF_MAX_SECONDS", "MESSAGING_PHONE_LINK_BACKOFF_MAX_SECONDS"),
        ("JOBS_PHONE_LINK_BATCH", "MESSAGING_PHONE_LINK_BATCH"),
    ],
)
def test_messagings_job_settings_come_from_the_environment_or_their_former_names(
    monkeypatch, variable, setting
):
    import importlib

    import config.settings.components.messaging as component

    # given a value in the environment, by its name or (for one more release) its former JOBS_ name
    monkeypatch.setenv(variable, "7")
    try:
        # when the component is read again, then the setting has it
        reloaded = importlib.reload(component)
        assert getattr(reloaded, setting) == 7
        # and the new name wins over the former one
        monkeypatch.setenv(setting, "9")
        assert getattr(importlib.reload(component), setting) == 9
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


@pytest.mark.parametrize(
    ("former_name", "name"),
    [
        ("jobs.recurring_messages", "recurring-messages"),
        ("jobs.phone_linking_recovery", "phone-linking-recovery"),
        ("jobs.messages_sweep", "messages-sweep"),
    ],
)
def test_messagings_former_task_names_still_run_its_jobs(former_name, name):
    from config.celery import app
    from jobs.registry import JOBS, JobTask

    # given a delivery a beat of the previous release sends by the former name
    task = app.tasks[former_name]
    # then it is a job task of the same job as the new name's (same lock, same ledger)
    assert isinstance(task, JobTask)
    assert task.job is JOBS[name]
    assert app.tasks[JOBS[name].task_name].job is JOBS[name]  # type: ignore[attr-defined]
    assert JOBS[name].task_name == f"messaging.{name.replace('-', '_')}"
