"""The scheduled refresh: the component token ahead of expiry, then every authorizer token and JS-SDK
ticket that is due.

Due items come from the sparse ``due`` index (KEYS_ONLY), oldest first, so the cost of a
run grows with the number of tokens due, not with the number of authorizers. Each refresh
goes through the same lease as on-demand refreshes. One failing authorizer never stops the
others; 45009 (daily quota) stops the run, since every further call would fail the same way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from wechat_core import clock, runtime
from wechat_core.errors import (
    NotFound,
    NoTicket,
    WeChatError,
    WeChatQuotaExceeded,
    WeChatRefreshTokenInvalid,
)
from wechat_core.features.tokens import (
    REFRESH_BEFORE_SECONDS,
    AuthorizerToken,
    AuthorizerUnavailable,
    ComponentToken,
    LeasedToken,
    leased_token,
)

if TYPE_CHECKING:
    from wechat_core.store.repositories import Store

logger = Logger(child=True)
metrics = Metrics()

FAILURE_BACKOFF_SECONDS = 60  # doubled per consecutive failure
MAX_BACKOFF_SECONDS = 15 * 60
QUOTA_BACKOFF_SECONDS = 30 * 60
MAX_CONCURRENCY = 32  # the HTTP and DynamoDB connection pools hold this many


@dataclass
class Report:
    component: str = "fresh"
    due: int = 0
    refreshed: int = 0
    skipped: int = 0
    failed: int = 0
    needs_reauthorization: int = 0
    quota_exceeded: bool = False
    stopped_early: bool = False
    errors: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def refresh_component_token(store: Store, report: Report) -> bool:
    """Refresh the component token when it is missing or due. Returns False when the run must stop."""
    item = store.tokens.read(ComponentToken.key) or {}
    if clock.now() < float(item.get("expires_at", 0)) - REFRESH_BEFORE_SECONDS:
        return True
    try:
        ComponentToken(store).get()
    except NoTicket:
        report.component = "no_ticket"
        metrics.add_metric("RefresherNoTicket", MetricUnit.Count, 1)
        return False
    except WeChatQuotaExceeded:
        report.component = "quota_exceeded"
        report.quota_exceeded = True
        metrics.add_metric("QuotaExceeded", MetricUnit.Count, 1)
        logger.error("api_component_token daily quota reached (45009)")
        return False
    except Exception as error:
        report.component = f"failed: {type(error).__name__}"
        metrics.add_metric("ComponentTokenRefreshFailed", MetricUnit.Count, 1)
        logger.exception("component token refresh failed")
        return False
    report.component = "refreshed"
    return True


@dataclass
class _Run:
    store: Store
    horizon: float
    report: Report
    lock: threading.Lock = field(default_factory=threading.Lock)
    quota_hit: threading.Event = field(default_factory=threading.Event)


def _refresh_one(run: _Run, sk: str) -> None:
    store, report, lock, quota_hit = run.store, run.report, run.lock, run.quota_hit
    if quota_hit.is_set():
        with lock:
            report.due -= 1  # queued before the quota ran out: left for the next run
        return
    token = leased_token(sk, store)
    if token is None:
        with lock:
            report.skipped += 1  # an item of a kind this version does not know
        return
    leased = token.take_due_lease(run.horizon)
    if leased is None:
        with lock:
            report.skipped += 1  # refreshed by someone else meanwhile, or revoked
        return
    try:
        token.refresh_leased(leased)
    except WeChatRefreshTokenInvalid:
        if isinstance(token, AuthorizerToken):
            with lock:
                report.needs_reauthorization += 1
        else:
            # A JS-SDK ticket's authorizer token could not be refreshed: that refresh marked the
            # account (and counts it when its own turn comes); the ticket waits for a new authorization.
            store.tokens.retire(token.key)
    except (AuthorizerUnavailable, NotFound):
        # A JS-SDK ticket whose account can no longer get one: fetched again on its next use.
        store.tokens.retire(token.key)
        with lock:
            report.skipped += 1
    except WeChatQuotaExceeded:
        quota_hit.set()
        _back_off(token, "45009", QUOTA_BACKOFF_SECONDS, count_failure=False)
        with lock:
            report.quota_exceeded = True
            report.failed += 1
    except Exception as error:
        code = str(error.errcode) if isinstance(error, WeChatError) else type(error).__name__
        failures = int(leased.get("failures", 0)) + 1
        _back_off(token, code, min(FAILURE_BACKOFF_SECONDS * 2 ** (failures - 1), MAX_BACKOFF_SECONDS))
        metrics.add_metric("AuthorizerRefreshFailed", MetricUnit.Count, 1)
        logger.warning("token refresh failed", extra={"item": sk, "error": code})
        with lock:
            report.failed += 1
            report.errors[code] = report.errors.get(code, 0) + 1
    else:
        with lock:
            report.refreshed += 1


def _back_off(token: LeasedToken, code: str, seconds: float, *, count_failure: bool = True) -> None:
    """Try again later, but before the token runs out if it still can."""
    item = token.store.tokens.read(token.key) or {}
    now = clock.now()
    retry_at = now + seconds
    expires_at = float(item.get("expires_at", 0))
    if expires_at > now + 120:
        retry_at = min(retry_at, expires_at - 120)
    token.store.tokens.back_off(token.key, retry_at, code, now, count_failure=count_failure)


def run(
    remaining_millis: Callable[[], int],
    *,
    lookahead_seconds: float = 300,
    concurrency: int = 16,
    page_size: int = 200,
    safety_millis: int = 15_000,
    store: Store | None = None,
) -> Report:
    """One scheduled run. Stops taking new work when less than ``safety_millis`` remain."""
    store = store or runtime.store()
    concurrency = max(1, min(concurrency, MAX_CONCURRENCY))
    report = Report()
    if not refresh_component_token(store, report):
        metrics.add_metric("RefresherStopped", MetricUnit.Count, 1)
        return report
    state = _Run(store, clock.now() + lookahead_seconds, report)
    quota_hit = state.quota_hit
    start: dict[str, Any] | None = None
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        pending: set[Future[None]] = set()
        while True:
            due_keys, start = store.authorizers.due(state.horizon, limit=page_size, start=start)
            for sk in due_keys:
                if quota_hit.is_set() or remaining_millis() < safety_millis:
                    report.stopped_early = not quota_hit.is_set()
                    break
                report.due += 1
                pending.add(pool.submit(_refresh_one, state, sk))
                if len(pending) >= concurrency * 2:
                    _, pending = wait(pending, return_when=FIRST_COMPLETED)
            else:
                if start is not None:
                    continue
            break
        wait(pending)
    for future in pending:
        future.result()  # surface programming errors; refresh errors are handled inside
    metrics.add_metric("AuthorizersDue", MetricUnit.Count, report.due)
    metrics.add_metric("AuthorizersRefreshed", MetricUnit.Count, report.refreshed)
    if report.quota_exceeded:
        metrics.add_metric("QuotaExceeded", MetricUnit.Count, 1)
        logger.error("daily quota reached (45009): refresher stopped")
    if report.stopped_early:
        logger.warning("refresher stopped before its time ran out; the rest waits for the next run")
    logger.info("refresher run", extra=report.as_dict())
    return report
