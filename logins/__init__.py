"""Per-account login lockout with backoff, for every login form (the API's and the admin's).

Failed logins are counted per username in the cache; after ``LOGIN_LOCKOUT_FAILURES`` of them
the account refuses every login, right password or not, for ``LOGIN_LOCKOUT_BASE_SECONDS``,
doubling with each further failure up to ``LOGIN_LOCKOUT_MAX_SECONDS``. A successful login
clears the count. It counts per account, not per address: guessing one account's password from
many addresses is slowed down as much as from one (NGINX limits each address separately).
"""
