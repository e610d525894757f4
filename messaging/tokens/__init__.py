"""Bearer tokens: logging in and out, the per-process token cache and its revocation on every
server (``cache``), and the model changes that revoke (``signals``)."""
