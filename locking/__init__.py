"""Distributed locks over a quorum of Redis nodes, with renewal, fencing tokens and an audit."""
