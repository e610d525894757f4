"""Probes for load balancers, Kubernetes and monitoring, on every server of the project.

``health.runner`` builds every probe's report (``/health``, ``/health/live``, ``/health/ready``,
``/health/detailed``, the ``health jobs`` command, and the live server's two probes): its checks
run in a small thread pool, each bounded by a driver timeout, and results are cached per
process. Health writes nothing, so it has a runner where other apps have selectors. Inside, one
direction: ``exceptions`` and ``report`` (the ``application/health+json`` shape and its one
rendering) at the bottom, ``postgres`` (bounded queries) and ``checks`` (one function per
dependency) above them, ``runner`` on top; ``drain`` is the SIGTERM flag shared with gunicorn.
The edges only render: ``views`` and ``middleware`` (Django), ``wsgi`` (``/health`` in front
of Django), the ``health`` command, and ``live.server``. Who may read ``/health/detailed`` is
``access``, with the rule ``/metrics`` uses (``config.clients``).
Design: docs/adr/0005-health-and-draining.md.
"""
