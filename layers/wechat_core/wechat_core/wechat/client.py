"""The WeChat HTTP client: one ``requests`` session, timeouts, errcodes as typed exceptions.

- ``-1``, HTTP 5xx, timeouts and connection errors: bounded retries with full jitter.
- A connection failure to the default host switches to WeChat's disaster-recovery host
  ``api2.weixin.qq.com`` ("通用异地容灾域名", doc Basic_Information/Interface_field_description).
- A call made with a stored token that WeChat calls invalid (40001/40014/42001) invalidates that
  exact token through its ``TokenSource`` (conditional on its value, so a newer token survives)
  and is retried once with a fresh token.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from wechat_core import clock
from wechat_core.config import DEFAULT_API_BASE
from wechat_core.errors import (
    LeaseExpired,
    UpstreamError,
    WeChatBusy,
    WeChatError,
    WeChatTokenInvalid,
    wechat_error,
)

if TYPE_CHECKING:
    import requests

    from wechat_core.config import Settings

logger = Logger(child=True)
metrics = Metrics()

DISASTER_RECOVERY_BASE = "https://api2.weixin.qq.com"
# A call is not started with less time than this left before the deadline: it could not finish.
MIN_CALL_SECONDS = 0.5

# Epoch seconds (``clock.now()``) after which no WeChat call may start or still be waited for.
_deadline: ContextVar[float | None] = ContextVar("wechat_call_deadline", default=None)


@contextlib.contextmanager
def deadline(at: float) -> Iterator[None]:
    """Bound every WeChat call made inside: none starts after ``at``, none is waited for past it.

    A token refresh runs under its lease: past the lease another Lambda may take over and
    refresh too, so the holder must be done, retries included, before then. Nested deadlines
    keep the earlier one.
    """
    current = _deadline.get()
    token = _deadline.set(at if current is None else min(current, at))
    try:
        yield
    finally:
        _deadline.reset(token)


class TokenSource(Protocol):
    """Where a call gets its access token, and how it reports one WeChat refused."""

    query_name: str

    def get(self) -> str: ...

    def invalidate(self, token: str) -> None: ...


class WeChatClient:
    def __init__(
        self,
        api_base: str,
        fallback_base: str | None = None,
        *,
        session: requests.Session | None = None,
        connect_timeout: float = 3.05,
        read_timeout: float = 5.0,
        max_attempts: int = 3,
        backoff_seconds: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.api_base = api_base.rstrip("/")
        self.fallback_base = fallback_base.rstrip("/") if fallback_base else None
        self._session = session
        self.timeout = (connect_timeout, read_timeout)
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self._sleep = sleep

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            import requests  # noqa: PLC0415 - keep cold start light

            self._session = requests.Session()
            self._session.headers["User-Agent"] = "wechat-component/1"
            # One kept-alive connection per refresher thread (REFRESH_CONCURRENCY, at most 32).
            adapter = requests.adapters.HTTPAdapter(pool_maxsize=32)
            self._session.mount("https://", adapter)
            self._session.mount("http://", adapter)
        return self._session

    # --- public ----------------------------------------------------------------------------

    def post(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        params: Mapping[str, str] | None = None,
        token: TokenSource | None = None,
    ) -> dict[str, Any]:
        return self._with_token("POST", path, params, body, token)

    def get(
        self, path: str, params: Mapping[str, str] | None = None, *, token: TokenSource | None = None
    ) -> dict[str, Any]:
        return self._with_token("GET", path, params, None, token)

    # --- internals -------------------------------------------------------------------------

    def _timeout_before_deadline(self, path: str) -> tuple[float, float]:
        """This attempt's timeouts, cut to the deadline; no attempt at all too close to it."""
        limit = _deadline.get()
        if limit is None:
            return self.timeout
        remaining = limit - clock.now()
        if remaining < MIN_CALL_SECONDS:
            metrics.add_metric("WeChatCallPastDeadline", MetricUnit.Count, 1)
            logger.warning("WeChat call not made: its deadline has passed", extra={"path": path})
            raise LeaseExpired
        connect, read = self.timeout
        return (min(connect, remaining), min(read, remaining))

    def _with_token(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
        token: TokenSource | None,
    ) -> dict[str, Any]:
        if token is None:
            return self._request(method, path, dict(params or {}), body)
        value = token.get()
        try:
            return self._request(method, path, {**(params or {}), token.query_name: value}, body)
        except WeChatTokenInvalid as error:
            logger.warning(
                "token refused by WeChat, refreshing once", extra={"errcode": error.errcode, "path": path}
            )
            token.invalidate(value)
            fresh = token.get()
            return self._request(method, path, {**(params or {}), token.query_name: fresh}, body)

    def _request(
        self, method: str, path: str, params: dict[str, str], body: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        import requests  # noqa: PLC0415

        base = self.api_base
        last: Exception | None = None
        # UTF-8 as is, not \u escapes: WeChat shows escapes literally in some messages (a customer-
        # service text with Chinese in it), as the PHP SDKs' JSON_UNESCAPED_UNICODE shows.
        payload = (
            None if body is None else json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        )
        headers = None if body is None else {"Content-Type": "application/json; charset=utf-8"}
        for attempt in range(1, self.max_attempts + 1):
            if attempt > 1:
                # Full jitter: concurrent Lambdas that failed together do not retry together.
                self._sleep(random.uniform(0, self.backoff_seconds * 2 ** (attempt - 2)))  # noqa: S311
            timeout = self._timeout_before_deadline(path)
            try:
                response = self.session.request(
                    method,
                    base + path,
                    params=params,
                    data=payload,
                    headers=headers,
                    timeout=timeout,
                )
            except requests.ConnectionError as error:
                last = error
                if (
                    self.fallback_base
                    and base != self.fallback_base
                    and not isinstance(error, requests.ConnectTimeout | requests.ReadTimeout)
                ):
                    logger.warning("WeChat host unreachable, switching to the disaster-recovery host")
                    base = self.fallback_base
                metrics.add_metric("WeChatConnectionError", MetricUnit.Count, 1)
                continue
            except requests.Timeout as error:
                last = error
                metrics.add_metric("WeChatTimeout", MetricUnit.Count, 1)
                continue
            if response.status_code >= 500:
                last = UpstreamError(f"WeChat answered HTTP {response.status_code}")
                metrics.add_metric("WeChatHttp5xx", MetricUnit.Count, 1)
                continue
            try:
                data = response.json()
            except ValueError:
                last = UpstreamError("WeChat answered something that is not JSON")
                continue
            if not isinstance(data, dict):
                raise UpstreamError("WeChat answered an unexpected JSON value")
            errcode = data.get("errcode", 0)
            if errcode in (0, None):
                return data
            refusal = wechat_error(int(errcode), str(data.get("errmsg", "")))
            metrics.add_metric(f"WeChatErrcode.{errcode}", MetricUnit.Count, 1)
            if isinstance(refusal, WeChatBusy):
                last = refusal
                continue
            raise refusal
        logger.error(
            "WeChat call failed after retries",
            extra={"path": path, "attempts": self.max_attempts, "last_error": type(last).__name__},
        )
        if isinstance(last, WeChatError | UpstreamError):
            raise last
        # Not chained: a requests error's text holds the URL, and with it the access token.
        raise UpstreamError from None


def build_client(conf: Settings) -> WeChatClient:
    """The client for these settings (``runtime.wechat()`` keeps one per process)."""
    fallback = conf.wechat_api_fallback_base
    if fallback is None and conf.wechat_api_base == DEFAULT_API_BASE:
        fallback = DISASTER_RECOVERY_BASE
    return WeChatClient(
        conf.wechat_api_base,
        fallback or None,
        max_attempts=conf.wechat_max_attempts,
        backoff_seconds=conf.wechat_backoff_seconds,
        read_timeout=conf.wechat_read_timeout_seconds,
    )
