"""The local loopback cluster (see ``cluster.py``)."""
