"""Bearer tokens: logging in and out (one token or all of a user's), the per-process token cache
and its revocation on every server (``cache``), and the model changes that revoke (``signals``:
a new password, a deactivation or a move to another church ends every token of the user)."""
