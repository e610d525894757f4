"""Settings for the ``logins`` app (lockout per account and client address, account-wide
throttle; see ``logins/__init__.py``). Every value comes from the environment."""

import environ

env = environ.Env()

# After this many failed logins in a row for one username from one client address, that address
# is locked out of that account (other addresses are not).
LOGIN_LOCKOUT_FAILURES = env.int("LOGIN_LOCKOUT_FAILURES", default=5)
# The first lock lasts this long; each further failure after it doubles it, up to the maximum.
LOGIN_LOCKOUT_BASE_SECONDS = env.int("LOGIN_LOCKOUT_BASE_SECONDS", default=60)
LOGIN_LOCKOUT_MAX_SECONDS = env.int("LOGIN_LOCKOUT_MAX_SECONDS", default=3600)
# A count of failures is forgotten after this long without a new one.
LOGIN_FAILURE_WINDOW_SECONDS = env.int("LOGIN_FAILURE_WINDOW_SECONDS", default=24 * 3600)
# After this many failures of one account from all addresses in the window, addresses the account
# never logged in from get one password check per throttle period between them (a guess spread
# over many addresses is slowed; the owner's known addresses never are). Keep it above
# LOGIN_LOCKOUT_FAILURES, so that one address alone locks only itself.
LOGIN_ACCOUNT_THROTTLE_FAILURES = env.int("LOGIN_ACCOUNT_THROTTLE_FAILURES", default=20)
LOGIN_ACCOUNT_THROTTLE_SECONDS = env.int("LOGIN_ACCOUNT_THROTTLE_SECONDS", default=30)
# An address an account logged in from is known to it (never throttled) for this long.
LOGIN_KNOWN_ADDRESS_DAYS = env.int("LOGIN_KNOWN_ADDRESS_DAYS", default=30)
# Failures for usernames no user has share this many counters (two small keys each at most in the
# cache's Redis, which evicts nothing), whatever number of made-up names is sent.
LOGIN_UNKNOWN_USERNAME_BUCKETS = env.int("LOGIN_UNKNOWN_USERNAME_BUCKETS", default=4096)

# Two-factor login for the admin (django-otp, TOTP): a staff user gives a code from an
# authenticator app after the password, and the admin refuses sessions that did not. Off by
# default for local work and tests; the production settings force it on. API logins are
# unchanged (a bearer token per password login). Devices: manage.py admin_totp <username>.
ADMIN_TWO_FACTOR = env.bool("ADMIN_TWO_FACTOR", default=False)
# The name an authenticator app shows next to the code.
OTP_TOTP_ISSUER = env.str("ADMIN_TOTP_ISSUER", default="Church messaging admin")

# Browser sessions are the admin's only (the API uses tokens): a stolen admin cookie or an
# unlocked office computer is good for a working day, not Django's default two weeks.
SESSION_COOKIE_AGE = env.int("ADMIN_SESSION_SECONDS", default=8 * 3600)
