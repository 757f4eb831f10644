"""Component and authorizer access tokens, shared by every Lambda through DynamoDB.

A token item holds the token, its expiry, a ``version`` that grows with every stored token,
and a lease (``lease_owner``, ``lease_until``). A caller that finds the token missing or due
takes the lease with a conditional write (only if the lease is free and the item is still at
the version it read); everyone else serves the still-valid token or waits briefly and reads
the result, so there is at most one upstream call per token lifetime. The new token is
written only by the lease holder (``lease_owner = me``), in one write with the rotated
``authorizer_refresh_token``, so an older answer never replaces a newer one. A lease whose
holder died runs out after ``LEASE_SECONDS`` and is taken over. The holder's own refresh, every
WeChat call and retry included, must be over ``LEASE_MARGIN_SECONDS`` before its lease ends
(``wechat_api.deadline``): a holder slower than its lease makes no further WeChat call, so two
holders never refresh one token side by side.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from wechat_core import clock, component_api, runtime, wechat_api
from wechat_core.errors import (
    Conflict,
    LeaseExpired,
    NotFound,
    NoTicket,
    TokenBusy,
    WeChatNotAuthorized,
    WeChatQuotaExceeded,
    WeChatRefreshTokenInvalid,
    WeChatTicketInvalid,
)
from wechat_core.store import Store, authorizer_sk, due_pk

logger = Logger(child=True)
metrics = Metrics()

COMPONENT_TOKEN_SK = "token"  # noqa: S105 - a sort key, not a credential
REFRESH_BEFORE_SECONDS = 15 * 60  # a token is due this long before it expires
SERVE_MARGIN_SECONDS = 2 * 60  # never hand out a token with less than this left
LEASE_SECONDS = 30  # longer than a refresh with all its retries takes
# The holder stops calling WeChat this long before its lease ends: room for clocks that differ
# between Lambdas and for the conditional write that stores the answer.
LEASE_MARGIN_SECONDS = 5
WAIT_SECONDS = 8.0  # how long a caller waits for someone else's refresh
PUSH_REQUEST_INTERVAL = 10 * 60  # at most one api_start_push_ticket per interval


def _owner() -> str:
    stream = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "local")
    return f"{stream[-24:]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _is_valid(item: dict[str, Any], now: float) -> bool:
    return bool(item.get("access_token")) and now < float(item.get("expires_at", 0)) - SERVE_MARGIN_SECONDS


def _lease_free(item: dict[str, Any], now: float) -> bool:
    return float(item.get("lease_until", 0)) <= now


@dataclass(frozen=True, slots=True)
class Fetched:
    access_token: str
    expires_in: int
    extra: dict[str, Any]


class LeasedToken:
    """The lease protocol, shared by the component token and every authorizer token."""

    sk: str
    query_name = "access_token"
    in_due_index = False
    # Seconds a token read from the table may be reused in this process without reading again
    # (never when it is due). WeChat keeps a replaced token valid for 5 minutes, and a refused
    # one is dropped at once (``invalidate``), so a short reuse is safe.
    memo_seconds = 0.0
    _memo: ClassVar[dict[tuple[str, str, str], tuple[str, float, float]]] = {}

    def __init__(self, store: Store | None = None) -> None:
        self.store = store or runtime.store()

    # --- hooks ------------------------------------------------------------------------------

    def check(self, item: dict[str, Any] | None) -> dict[str, Any]:
        return item or {}

    def fetch(self, item: dict[str, Any]) -> Fetched:
        raise NotImplementedError

    def lease_condition(self) -> tuple[str, dict[str, Any]]:
        """What must hold of the item, besides a free lease, for a refresh to start."""
        return "attribute_exists({pk}) OR attribute_not_exists({pk})", {}

    def save_condition(self) -> tuple[str, dict[str, Any]]:
        """What must hold of the item, besides our lease, for a refreshed token to be stored."""
        return "attribute_exists({pk}) OR attribute_not_exists({pk})", {}

    # --- TokenSource --------------------------------------------------------------------------

    def get(self) -> str:
        """A valid token, refreshing it through the lease when it is missing or due."""
        remembered = self._remembered()
        if remembered is not None:
            return remembered
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            item = self.check(self.store.get(self.sk))
            now = clock.now()
            valid = _is_valid(item, now)
            due = now >= float(item.get("expires_at", 0)) - REFRESH_BEFORE_SECONDS
            free = _lease_free(item, now)
            if valid and (not due or not free):
                if not due:
                    self._remember(str(item["access_token"]), float(item["expires_at"]))
                return str(item["access_token"])
            if free:
                leased = self._take_lease(now, version=item.get("version"))
                if leased is not None:
                    return self.refresh_leased(leased)
                continue  # someone else took it between our read and our write: read again
            if time.monotonic() > deadline:
                metrics.add_metric("TokenWaitTimeout", MetricUnit.Count, 1)
                raise TokenBusy
            time.sleep(random.uniform(0.05, 0.15))  # noqa: S311 - jitter, not security

    def _memo_key(self) -> tuple[str, str, str]:
        return (self.store.table_name, self.store.component_appid, self.sk)

    def _remembered(self) -> str | None:
        if not self.memo_seconds:
            return None
        entry = self._memo.get(self._memo_key())
        if entry is None:
            return None
        token, expires_at, read_at = entry
        stale = time.monotonic() - read_at > self.memo_seconds
        return None if stale or clock.now() >= expires_at - REFRESH_BEFORE_SECONDS else token

    def _remember(self, token: str, expires_at: float) -> None:
        if self.memo_seconds:
            self._memo[self._memo_key()] = (token, expires_at, time.monotonic())

    @classmethod
    def forget_all(cls) -> None:
        cls._memo.clear()

    def invalidate(self, token: str) -> None:
        """WeChat refused this exact token: expire it, unless a newer one is already stored."""
        self._memo.pop(self._memo_key(), None)
        applied, _ = self.store.update(
            self.sk,
            set_values={"expires_at": 0},
            condition="{access_token} = :v",
            condition_values={":v": token},
        )
        metrics.add_metric("TokenInvalidated", MetricUnit.Count, 1)
        logger.warning("stored token refused by WeChat", extra={"item": self.sk, "invalidated": applied})

    # --- lease and refresh ---------------------------------------------------------------

    def _take_lease(
        self,
        now: float,
        *,
        version: Any = None,
        condition: str | None = None,
        values: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """Take the lease if it is free and ``condition`` holds (by default: still at ``version``)."""
        if condition is None:
            condition = "attribute_not_exists({version})" if version is None else "{version} = :ver"
            values = {} if version is None else {":ver": version}
        required, required_values = self.lease_condition()
        applied, item = self.store.update(
            self.sk,
            set_values={"lease_owner": _owner(), "lease_until": now + LEASE_SECONDS},
            condition=f"({required}) AND (attribute_not_exists({{lease_until}}) OR {{lease_until}} <= :now) "
            f"AND ({condition})",
            condition_values={":now": now, **required_values, **(values or {})},
            return_new=True,
        )
        return item if applied else None

    def refresh_leased(self, leased: dict[str, Any]) -> str:
        """Fetch a new token while holding the lease and store it; returns the new token."""
        owner = str(leased["lease_owner"])
        try:
            with wechat_api.deadline(float(leased["lease_until"]) - LEASE_MARGIN_SECONDS):
                fetched = self.fetch(leased)
        except BaseException:
            self.release(owner)
            raise
        now = clock.now()
        expires_at = now + fetched.expires_in
        values: dict[str, Any] = {
            "access_token": fetched.access_token,
            "expires_at": expires_at,
            "refreshed_at": now,
            **fetched.extra,
        }
        if self.in_due_index:
            values |= {
                "due_pk": due_pk(self.store.component_appid),
                "due_at": expires_at - REFRESH_BEFORE_SECONDS,
            }
        applied = self._save(owner, values)
        if applied:
            self._remember(fetched.access_token, expires_at)
        metrics.add_metric("TokenRefreshed", MetricUnit.Count, 1)
        if not applied:
            # Our lease ran out and someone else took over; their write stands.
            metrics.add_metric("TokenLeaseLost", MetricUnit.Count, 1)
            logger.warning("lease lost before the token was stored", extra={"item": self.sk})
        return fetched.access_token

    def _save(self, owner: str, values: dict[str, Any]) -> bool:
        # WeChat has already answered: a rotated refresh token exists only in memory now, so a
        # failing write is retried before giving up (the next refresh recovers it otherwise).
        required, required_values = self.save_condition()
        for attempt in range(3):
            try:
                applied, _ = self.store.update(
                    self.sk,
                    set_values=values,
                    add={"version": 1},
                    remove=("lease_owner", "lease_until", "last_error", "failures"),
                    condition=f"{{lease_owner}} = :owner AND ({required})",
                    condition_values={":owner": owner, **required_values},
                )
            except Exception:
                if attempt == 2:
                    metrics.add_metric("TokenSaveFailed", MetricUnit.Count, 1)
                    logger.exception("could not store a refreshed token", extra={"item": self.sk})
                    raise
                continue
            return applied
        return False  # pragma: no cover - the loop returns or raises

    def release(self, owner: str, extra: dict[str, Any] | None = None, remove: tuple[str, ...] = ()) -> None:
        self.store.update(
            self.sk,
            set_values=extra,
            remove=("lease_owner", "lease_until", *remove),
            condition="{lease_owner} = :owner",
            condition_values={":owner": owner},
        )


class ComponentToken(LeasedToken):
    sk = COMPONENT_TOKEN_SK
    query_name = "component_access_token"
    memo_seconds = 30.0  # every authorizer refresh and login needs it: one read per 30 s, not per call

    def fetch(self, item: dict[str, Any]) -> Fetched:
        ticket = self.store.get_ticket()
        if ticket is None:
            self.request_ticket_push()
            raise NoTicket
        try:
            data = component_api.api_component_token(ticket.ticket)
        except WeChatTicketInvalid:
            self.request_ticket_push()
            raise
        metrics.add_metric("ComponentTokenFetched", MetricUnit.Count, 1)
        return Fetched(str(data["component_access_token"]), int(data.get("expires_in", 7200)), {})

    def request_ticket_push(self) -> bool:
        """Ask WeChat to (re)start ticket pushes, at most once per interval across all Lambdas."""
        now = clock.now()
        applied, _ = self.store.update(
            "ticket_push_request",
            set_values={"requested_at": now},
            condition="attribute_not_exists({requested_at}) OR {requested_at} < :cutoff",
            condition_values={":cutoff": now - PUSH_REQUEST_INTERVAL},
        )
        if applied:
            component_api.api_start_push_ticket()
            metrics.add_metric("TicketPushRequested", MetricUnit.Count, 1)
            logger.warning("no usable component_verify_ticket; asked WeChat to push one")
        return applied


class AsComponentAccessToken(ComponentToken):
    """The component token under the ``access_token`` query name (wxa and newer APIs)."""

    query_name = "access_token"


class AuthorizerUnavailable(Conflict):
    reason = "authorizer is not active"


class AuthorizerToken(LeasedToken):
    in_due_index = True

    def __init__(self, authorizer_appid: str, store: Store | None = None) -> None:
        super().__init__(store)
        self.authorizer_appid = authorizer_appid
        self.sk = authorizer_sk(authorizer_appid)

    def lease_condition(self) -> tuple[str, dict[str, Any]]:
        return "{status} = :active AND attribute_exists({refresh_token})", {":active": "active"}

    def save_condition(self) -> tuple[str, dict[str, Any]]:
        # A revocation in the meantime drops the lease anyway; this keeps a revoked item revoked
        # (no tokens, out of the due index) whatever path a write takes.
        return "{status} = :active", {":active": "active"}

    def _check_lease(self, owner: str) -> None:
        """Before a further WeChat call in one refresh: the lease must still be ours (a revocation
        or a new authorization drops it)."""
        item = self.store.get(self.sk) or {}
        if item.get("lease_owner") != owner:
            metrics.add_metric("TokenLeaseLost", MetricUnit.Count, 1)
            raise LeaseExpired

    def take_due_lease(self, horizon: float) -> dict[str, Any] | None:
        """The refresher's lease: only while the item is still due (nobody refreshed it meanwhile)."""
        return self._take_lease(clock.now(), condition="{due_at} <= :h", values={":h": horizon})

    def check(self, item: dict[str, Any] | None) -> dict[str, Any]:
        if item is None:
            raise NotFound("authorizer not found")
        status = item.get("status")
        if status == "revoked":
            raise AuthorizerUnavailable("authorization revoked")
        if status == "needs_reauth":
            raise AuthorizerUnavailable("authorizer must authorize again")
        if status != "active" or not item.get("refresh_token"):
            raise AuthorizerUnavailable("authorization not completed")
        return item

    def fetch(self, item: dict[str, Any]) -> Fetched:
        refresh_token = str(item["refresh_token"])
        component = ComponentToken(self.store)
        try:
            data = component_api.api_authorizer_token(self.authorizer_appid, refresh_token, component)
        except WeChatQuotaExceeded:
            raise  # refused before anything happened
        except WeChatRefreshTokenInvalid:
            self._check_lease(str(item["lease_owner"]))
            recovered = self._recover_refresh_token(component)
            if recovered is None or recovered == refresh_token:
                self._mark_needs_reauthorization(str(item["lease_owner"]))
                raise
            logger.warning(
                "refresh token recovered from api_get_authorizer_info", extra={"appid": self.authorizer_appid}
            )
            metrics.add_metric("RefreshTokenRecovered", MetricUnit.Count, 1)
            refresh_token = recovered
            try:
                data = component_api.api_authorizer_token(self.authorizer_appid, refresh_token, component)
            except WeChatRefreshTokenInvalid:
                self._mark_needs_reauthorization(str(item["lease_owner"]))
                raise
        except LeaseExpired:
            raise  # no further WeChat call for this refresh; the next holder recovers through 61023
        except Exception:
            # WeChat may have rotated the refresh token and the answer was lost on the way (a
            # timeout, a 5xx, a dropped connection): keep the one WeChat holds now, so the
            # table never holds a refresh token WeChat no longer accepts.
            self._keep_current_refresh_token(component, refresh_token, str(item["lease_owner"]))
            raise
        return Fetched(
            str(data["authorizer_access_token"]),
            int(data.get("expires_in", 7200)),
            # Saved in the same write as the access token: a rotated refresh token is never lost
            # to a crash between two writes.
            {"refresh_token": str(data.get("authorizer_refresh_token") or refresh_token)},
        )

    def _recover_refresh_token(self, component: ComponentToken) -> str | None:
        """WeChat's current refresh token for this account, if the authorization still stands."""
        try:
            info = component_api.api_get_authorizer_info(self.authorizer_appid, component)
        except WeChatNotAuthorized:
            return None
        token = info.get("authorization_info", {}).get("authorizer_refresh_token")
        return str(token) if token else None

    def _keep_current_refresh_token(self, component: ComponentToken, stored: str, owner: str) -> None:
        try:
            self._check_lease(owner)
            current = self._recover_refresh_token(component)
            if current is None or current == stored:
                return
            applied, _ = self.store.update(
                self.sk,
                set_values={"refresh_token": current},
                condition="{lease_owner} = :owner AND {refresh_token} = :stored",
                condition_values={":owner": owner, ":stored": stored},
            )
        except Exception:  # best effort: the next refresh recovers through 61023
            logger.warning("refresh token check after a failed refresh failed", exc_info=True)
            return
        if applied:
            metrics.add_metric("RefreshTokenRecovered", MetricUnit.Count, 1)
            logger.warning(
                "refresh token rotated by a refresh whose answer was lost; kept WeChat's current one",
                extra={"appid": self.authorizer_appid},
            )

    def _mark_needs_reauthorization(self, owner: str) -> None:
        now = clock.now()
        self.release(
            owner,
            extra={"status": "needs_reauth", "needs_reauth_at": now, "last_error": "61023"},
            remove=("due_pk", "due_at"),
        )
        metrics.add_metric("AuthorizerNeedsReauthorization", MetricUnit.Count, 1)
        logger.error(
            "authorizer refresh token invalid (61023): the account must authorize again",
            extra={"appid": self.authorizer_appid},
        )


def component_token(store: Store | None = None) -> ComponentToken:
    return ComponentToken(store)


def authorizer_token(authorizer_appid: str, store: Store | None = None) -> AuthorizerToken:
    return AuthorizerToken(authorizer_appid, store)
