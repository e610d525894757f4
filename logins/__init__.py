"""Login lockout per account and client address, with an account-wide throttle, for every login
form (the API's and the admin's), as django-axes does it.

- **Per address**: failed logins are counted per account *and* client address (the address
  ``config.clients`` derives: the peer, or ``X-Forwarded-For`` behind a trusted proxy; an IPv6
  client by its /64). After ``LOGIN_LOCKOUT_FAILURES`` of them that address refuses every login
  to that account, right password or not, for ``LOGIN_LOCKOUT_BASE_SECONDS``, doubling with each
  further failure up to ``LOGIN_LOCKOUT_MAX_SECONDS``. Other addresses are not affected: nobody
  can lock an account's owner out by failing on purpose. A success clears that address's count.
- **Per account**: after ``LOGIN_ACCOUNT_THROTTLE_FAILURES`` failures of the account from all
  addresses within ``LOGIN_FAILURE_WINDOW_SECONDS``, each further failure throttles it for
  ``LOGIN_ACCOUNT_THROTTLE_SECONDS``: addresses it never logged in from wait that long between
  password checks (one guess per period, however many addresses guess); an address it logged in
  from within ``LOGIN_KNOWN_ADDRESS_DAYS`` is never throttled, and the throttle never lasts past
  its period, so the owner is slowed at worst, never locked out.
- **Unknown usernames** share ``LOGIN_UNKNOWN_USERNAME_BUCKETS`` buckets of counters: a flood of
  made-up names adds a bounded number of small keys to the cache's Redis (``noeviction``).

Refused attempts (locked or throttled) are answered 429 with ``Retry-After`` by the API and as a
refused login by the admin's form; they are not counted.

The admin's second factor lives here too (``admin_site``): with ``ADMIN_TWO_FACTOR`` on (forced
by the production settings) a staff user needs a TOTP code after the password (django-otp);
``manage.py admin_totp <username>`` gives a user its device. ``check --deploy`` warns when it is
off (``checks``).
"""
