"""Settings for the test suite: the same real services as local, separate names and keys."""

import secrets

from config.redis_urls import celery_url, redis_db_url
from config.settings.local import *  # noqa: F403

DEBUG = False
# Tests render pages without a collectstatic first: plain names, no manifest to look them up in.
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast users in tests

# Each parallel test run can use its own database (through the same PgBouncer).
DATABASES["default"]["TEST"] = {"NAME": env("DJANGO_TEST_DB_NAME", default="test_app")}  # noqa: F405
# The replica streams the whole primary cluster, so the test database appears there by itself.
# MIRROR keeps Django from creating or flushing anything through the replica alias (flushes and
# sequence resets skip mirrors); tests/conftest.py's django_db_setup then points the alias at the
# test database on the real replica instead of at the primary, as a mirror would.
DATABASES["replica"]["TEST"] = {"MIRROR": "default"}  # noqa: F405

# The diagnostic endpoints the replica tests call (/replicas/debug/...).
REPLICAS_DEBUG_ENDPOINTS = True

# A prefix of its own per run: failed-login counts and seen webhook signatures of an earlier
# run (same usernames, same bodies) must not lock out or refuse anything in this one.
CACHES["default"]["KEY_PREFIX"] = f"test-{secrets.token_hex(4)}"  # noqa: F405
# Tasks sent by tests go to their own broker database, never to the cluster's workers.
CELERY_BROKER_URL = celery_url(redis_db_url(BROKER_REDIS_URL, 2))  # noqa: F405
CELERY_RESULT_BACKEND = celery_url(redis_db_url(BROKER_REDIS_URL, 2))  # noqa: F405
# Events published by tests go to their own channel, never to the cluster's Socket.IO servers.
LIVE_CHANNEL = env("LIVE_CHANNEL", default="live-test")  # noqa: F405
