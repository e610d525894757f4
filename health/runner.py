"""The health runner: every probe of every server, as reports. Views, ``health/wsgi.py``, the
``health`` command and the live server only render these.

- ``lb_report``: the balancer's ``/health``. Touches nothing; fails only while draining.
- ``live_report``: the process answers. Never a dependency (an outage must not restart pods).
- ``ready_report``: primary through PgBouncer, migrations, not draining; the lock quorum is
  reported but only warns: web requests take no lock, so losing it must not take every web pod
  out of its Service at once.
- ``jobs_report``: what a Celery worker or beat needs to do its work: the primary, migrations,
  the broker and the lock quorum, which fails it here (exec probe ``manage.py health jobs``).
- ``detailed_report``: every dependency with observed values, for monitoring.
- ``live_server_live_report`` and ``live_server_ready_report``: the live server's probes (the
  primary through PgBouncer for its token lookups, the broker Redis for its events, not
  draining). That server keeps its own drain flag and connection count and passes them in.

The dependency checks of a probe run concurrently in a small thread pool, each bounded by a
driver timeout, and the probe waits at most the budget plus a margin, so its cost is the
slowest single check, not their sum. Results are reused for ``HEALTH_CACHE_SECONDS`` in each
process; the drain flag is read fresh on every call.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import partial

from django.conf import settings

from config import metrics, redis_urls
from config.databases import PRIMARY_DB_ALIAS
from health import checks, drain
from health.exceptions import HealthProblem, Status
from health.report import CheckResult, Observation, Report
from replicas.selectors import replica_aliases

logger = logging.getLogger(__name__)

# A check that has not answered by its deadline plus this is reported as timed out.
_GRACE_SECONDS = 0.3


@dataclass(frozen=True)
class Check:
    key: str
    run: Callable[..., Observation]  # called with ``deadline=`` (time.monotonic() based)
    component_id: str = ""
    critical: bool = True

    def result(self, status: Status, observed: Observation | None = None, output: str = "") -> CheckResult:
        return CheckResult(
            key=self.key,
            status=status,
            observed=observed,
            component_id=self.component_id,
            output=output,
            critical=self.critical,
        )


# --- the probes ---------------------------------------------------------------------------


def lb_report() -> Report:
    if drain.is_draining():
        return Report(results=[_draining_result(draining=True)])
    return Report()


def live_report() -> Report:
    alive = _alive_result(draining=drain.is_draining())
    return Report(results=[alive], service_id=settings.APP_SERVER_NAME, description="live")


def ready_report() -> Report:
    results = _cached("ready", lambda: _run_with_quorum(_ready_checks(), quorum_critical=False))
    draining = _draining_result(draining=drain.is_draining())
    return Report(results=[*results, draining], service_id=settings.APP_SERVER_NAME, description="ready")


def jobs_report() -> Report:
    """A worker's or beat's own readiness: without a lock quorum no job can run (fail closed)."""
    results = _cached("jobs", lambda: _run_with_quorum([*_ready_checks(), _broker_check()]))
    return Report(results=results, service_id=settings.APP_SERVER_NAME, description="jobs")


def detailed_report() -> Report:
    results = _cached("detailed", lambda: _run_with_quorum(_ready_checks() + _detailed_only_checks()))
    draining = _draining_result(draining=drain.is_draining())
    return Report(results=[*results, draining], service_id=settings.APP_SERVER_NAME, description="detailed")


def live_server_live_report(*, draining: bool, connections: int) -> Report:
    results = [_alive_result(draining=draining), _connections_result(connections)]
    return Report(results=results, service_id=_live_server_id(), description="live")


def live_server_ready_report(*, draining: bool, connections: int) -> Report:
    """Blocks on the checks (at most the budget): the live server calls it in a worker thread."""
    results = _cached(
        "live-server-ready", lambda: run_checks(_live_server_checks(), timeout=settings.HEALTH_CHECK_TIMEOUT)
    )
    extra = [_draining_result(draining=draining), _connections_result(connections)]
    return Report(results=[*results, *extra], service_id=_live_server_id(), description="ready")


PROBES: dict[str, Callable[[], Report]] = {
    "live": live_report,
    "ready": ready_report,
    "detailed": detailed_report,
    "jobs": jobs_report,
}


# --- what each probe checks --------------------------------------------------------------------


def _lock_node_checks() -> list[Check]:
    timeout = settings.HEALTH_CHECK_TIMEOUT
    return [
        # One node down is survivable; the quorum result below carries the verdict.
        Check(
            "lock-redis:responseTime",
            partial(checks.redis_response_time, url=url, timeout=timeout),
            component_id=f"node-{index}",
            critical=False,
        )
        for index, url in enumerate(settings.LOCK_REDIS_URLS, 1)
    ]


def _ready_checks() -> list[Check]:
    return [
        Check("database:responseTime", checks.database_response_time, component_id="primary"),
        Check("migrations:pending", checks.migrations_pending),
        *_lock_node_checks(),
    ]


def _detailed_only_checks() -> list[Check]:
    timeout = settings.HEALTH_CHECK_TIMEOUT
    replicas = [
        Check(
            "database:replicationLag",
            partial(checks.replica_lag, alias=alias),
            component_id=alias,
            critical=False,  # the router sends reads to the primary when a replica is unusable
        )
        for alias in replica_aliases()
    ]
    # Which role each alias reaches now: roles move with a failover (ADR 0017).
    roles = [
        Check(
            "database:role",
            partial(checks.database_role, alias=alias),
            component_id="primary" if alias == PRIMARY_DB_ALIAS else alias,
            critical=False,
        )
        for alias in (PRIMARY_DB_ALIAS, *replica_aliases())
    ]
    # Where the broker's master is now, when Sentinel names it (ADR 0019).
    master = (
        [
            Check(
                "broker-redis:master",
                partial(checks.broker_master, url=settings.BROKER_REDIS_URL, timeout=timeout),
                critical=False,
            )
        ]
        if redis_urls.is_sentinel(settings.BROKER_REDIS_URL)
        else []
    )
    return [
        *roles,
        *replicas,
        _broker_check(),
        *master,
        Check(
            "celery:workers",
            partial(checks.celery_workers, timeout=min(timeout, settings.HEALTH_CELERY_PING_TIMEOUT)),
            critical=False,  # requests are still served; jobs wait in the queue
        ),
        Check(
            "disk:utilization",
            partial(
                checks.disk_utilization,
                path=settings.HEALTH_DISK_PATH,
                max_percent=settings.HEALTH_DISK_MAX_PERCENT,
            ),
        ),
        Check(
            "memory:utilization",
            partial(checks.memory_utilization, max_percent=settings.HEALTH_MEMORY_MAX_PERCENT),
        ),
    ]


def _broker_check(url: str | None = None) -> Check:
    timeout = settings.HEALTH_CHECK_TIMEOUT
    return Check(
        "broker-redis:responseTime",
        partial(checks.redis_response_time, url=url or settings.BROKER_REDIS_URL, timeout=timeout),
    )


def _live_server_checks() -> list[Check]:
    # Token lookups go to the primary; events come through the live server's own Redis URL.
    return [
        Check("database:responseTime", checks.database_response_time, component_id="primary"),
        _broker_check(settings.LIVE_REDIS_URL),
    ]


def _live_server_id() -> str:
    return f"{settings.APP_SERVER_NAME}-live"


def _quorum_result(node_results: Sequence[CheckResult], *, critical: bool = True) -> CheckResult:
    """A majority of the lock nodes must answer for locks to be taken at all. ``critical=False``
    (web readiness): no quorum shows ``fail`` in its entry but only makes the probe ``warn``."""
    answered = sum(1 for result in node_results if result.status is Status.PASS)
    needed = len(node_results) // 2 + 1
    observed = Observation(answered, "nodes")
    if answered < needed:
        output = f"{needed} nodes needed" + ("" if critical else "; jobs cannot run, requests are served")
        return CheckResult("lock-redis:quorum", Status.FAIL, observed, output=output, critical=critical)
    if answered < len(node_results):
        return CheckResult("lock-redis:quorum", Status.WARN, observed, output="degraded")
    return CheckResult("lock-redis:quorum", Status.PASS, observed)


def _alive_result(*, draining: bool) -> CheckResult:
    # A draining process is still alive: it only stops taking new work.
    return CheckResult(key="server:draining", status=Status.PASS, observed=Observation(draining))


def _draining_result(*, draining: bool) -> CheckResult:
    return CheckResult(
        key="server:draining",
        status=Status.FAIL if draining else Status.PASS,
        observed=Observation(draining),
        output="shutting down" if draining else "",
    )


def _connections_result(connections: int) -> CheckResult:
    return CheckResult(key="connections:count", status=Status.PASS, observed=Observation(connections))


# --- running them ----------------------------------------------------------------------------


def _run_with_quorum(probe_checks: Sequence[Check], *, quorum_critical: bool = True) -> list[CheckResult]:
    results = run_checks(probe_checks, timeout=settings.HEALTH_CHECK_TIMEOUT)
    nodes = [result for result in results if result.key == "lock-redis:responseTime"]
    return [*results, _quorum_result(nodes, critical=quorum_critical)]


def run_checks(probe_checks: Sequence[Check], *, timeout: float) -> list[CheckResult]:
    """Run the checks concurrently; a check still running after its budget counts as failed."""
    deadline = time.monotonic() + timeout
    pool = _pool()
    futures: list[tuple[Check, Future[CheckResult]]] = [
        (check, pool.submit(_run_one, check, deadline)) for check in probe_checks
    ]
    wait([future for _, future in futures], timeout=timeout + _GRACE_SECONDS)
    return [
        future.result() if future.done() else check.result(Status.FAIL, output="timed out")
        for check, future in futures
    ]


def _run_one(check: Check, deadline: float) -> CheckResult:
    started = time.monotonic()
    result = _run_one_unobserved(check, deadline)
    name = f"{check.key}:{check.component_id}" if check.component_id else check.key
    metrics.record_health_check(
        check=name, ok=result.status != Status.FAIL, seconds=time.monotonic() - started
    )
    return result


def _run_one_unobserved(check: Check, deadline: float) -> CheckResult:
    try:
        observed = check.run(deadline=deadline)
    except HealthProblem as problem:
        return check.result(problem.status, problem.observed, problem.output)
    except Exception:
        logger.warning("Health check %s crashed", check.key, exc_info=True)
        return check.result(Status.FAIL, output="check failed")
    return check.result(Status.PASS, observed)


_pool_state: dict[str, object] = {}
_pool_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """One pool per process, made after the fork (gunicorn workers do not share threads)."""
    with _pool_lock:
        if _pool_state.get("pid") != os.getpid():
            _pool_state["pid"] = os.getpid()
            _pool_state["pool"] = ThreadPoolExecutor(max_workers=16, thread_name_prefix="health-check")
        pool = _pool_state["pool"]
        assert isinstance(pool, ThreadPoolExecutor)
        return pool


_cache: dict[str, tuple[float, list[CheckResult]]] = {}
_cache_locks = {kind: threading.Lock() for kind in ("ready", "detailed", "jobs", "live-server-ready")}


def _cached(kind: str, compute: Callable[[], list[CheckResult]]) -> list[CheckResult]:
    """Reuse a fresh result; concurrent callers in this process wait for one computation."""
    with _cache_locks[kind]:
        hit = _cache.get(kind)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        results = compute()
        _cache[kind] = (time.monotonic() + settings.HEALTH_CACHE_SECONDS, results)
        _log_change(kind, results)
        return results


_last_status: dict[str, Status] = {}


def _log_change(kind: str, results: Sequence[CheckResult]) -> None:
    status = Report(results=results).status
    previous = _last_status.get(kind, Status.PASS)
    _last_status[kind] = status
    if status is not previous:
        failing = ", ".join(
            f"{result.key} {result.component_id}: {result.output}".replace(" :", ":")
            for result in results
            if result.status is not Status.PASS
        )
        log = logger.info if status is Status.PASS else logger.warning
        log("%s probe went from %s to %s%s", kind, previous, status, f" ({failing})" if failing else "")


def clear_cache() -> None:
    _cache.clear()
