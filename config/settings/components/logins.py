"""Settings for the ``logins`` app (per-account lockout). Every value comes from the environment."""

import environ

env = environ.Env()

# After this many failed logins in a row for one username, the account is locked.
LOGIN_LOCKOUT_FAILURES = env.int("LOGIN_LOCKOUT_FAILURES", default=5)
# The first lock lasts this long; each further failure after it doubles it, up to the maximum.
LOGIN_LOCKOUT_BASE_SECONDS = env.int("LOGIN_LOCKOUT_BASE_SECONDS", default=60)
LOGIN_LOCKOUT_MAX_SECONDS = env.int("LOGIN_LOCKOUT_MAX_SECONDS", default=3600)
# A count of failures is forgotten after this long without a new one.
LOGIN_FAILURE_WINDOW_SECONDS = env.int("LOGIN_FAILURE_WINDOW_SECONDS", default=24 * 3600)

# Browser sessions are the admin's only (the API uses tokens): a stolen admin cookie or an
# unlocked office computer is good for a working day, not Django's default two weeks.
SESSION_COOKIE_AGE = env.int("ADMIN_SESSION_SECONDS", default=8 * 3600)
