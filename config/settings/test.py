"""Settings for the test suite: the same real services as local, separate names and keys."""

from config.settings.local import *  # noqa: F403

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast users in tests

# Each parallel test run can use its own database (through the same PgBouncer).
DATABASES["default"]["TEST"] = {"NAME": env("DJANGO_TEST_DB_NAME", default="test_app")}  # noqa: F405
# The replica streams the whole primary cluster, so the test database appears there by
# itself; it is never created or flushed through the replica alias.
DATABASES["replica"]["TEST"] = {"MIRROR": "default"}  # noqa: F405

CACHES["default"]["KEY_PREFIX"] = "test"  # noqa: F405
# Tasks sent by tests go to their own broker database, never to the cluster's workers.
CELERY_BROKER_URL = f"{BROKER_REDIS_URL}/2"  # noqa: F405
CELERY_RESULT_BACKEND = f"{BROKER_REDIS_URL}/2"  # noqa: F405
