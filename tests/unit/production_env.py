"""The variables production settings require, with test values: one list for every test that
starts a process under ``config.settings.production``, so a new required secret is added once."""

SECRET_KEY = "x" * 20 + "-production-secret-key-with-enough-entropy-0123456789"

REQUIRED = {
    "DJANGO_SECRET_KEY": SECRET_KEY,
    "DJANGO_ALLOWED_HOSTS": "testserver",
    "DB_PASSWORD": "p",
    "MESSAGING_WEBHOOK_SECRET": "s",
    "HEALTH_DETAILED_TOKEN": "t",
    "HEALTH_TRUSTED_PROXIES": "10.0.0.5/32",
    "BROKER_REDIS_PASSWORD": "broker-pw",
    "LOCK_REDIS_PASSWORD": "lock-pw",
}
