"""The local loopback cluster (see the ``cluster`` package)."""
