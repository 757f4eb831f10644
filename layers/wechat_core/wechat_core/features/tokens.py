"""Component and authorizer access tokens and JS-SDK tickets, shared by every Lambda through DynamoDB.

A token item holds the token (or ticket), its expiry, a ``version`` that grows with every stored token,
and a lease (``lease_owner``, ``lease_until``). A caller that finds the token missing or due
takes the lease with a conditional write (only if the lease is free and the item is still at
the version it read); everyone else serves the still-valid token or waits briefly and reads
the result, so there is at most one upstream call per token lifetime. The new token is
written only by the lease holder, in one write with the rotated ``authorizer_refresh_token``,
so an older answer never replaces a newer one. A lease whose holder died runs out after
``LEASE_SECONDS`` and is taken over. The holder's own refresh, every WeChat call and retry
included, must be over ``LEASE_MARGIN_SECONDS`` before its lease ends (``wechat.client.deadline``):
a holder slower than its lease makes no further WeChat call, so two holders never refresh one
token side by side. The conditional writes themselves are ``store.tokens``.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from wechat_core import clock, runtime
from wechat_core.errors import (
    BadRequest,
    Conflict,
    LeaseExpired,
    NotFound,
    NoTicket,
    TokenBusy,
    UpstreamError,
    WeChatNotAuthorized,
    WeChatQuotaExceeded,
    WeChatRefreshTokenInvalid,
    WeChatTicketInvalid,
)
from wechat_core.store import keys
from wechat_core.wechat.client import deadline

if TYPE_CHECKING:
    from wechat_core.store.repositories import Store

logger = Logger(child=True)
metrics = Metrics()

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


def _is_valid(item: dict[str, Any], now: float, field: str = "access_token") -> bool:
    return bool(item.get(field)) and now < float(item.get("expires_at", 0)) - SERVE_MARGIN_SECONDS


def _lease_free(item: dict[str, Any], now: float) -> bool:
    return float(item.get("lease_until", 0)) <= now


@dataclass(frozen=True, slots=True)
class Fetched:
    value: str
    expires_in: int
    extra: dict[str, Any]


class LeasedToken:
    """The lease protocol, shared by the component token, authorizer tokens and JS-SDK tickets."""

    key: str
    query_name = "access_token"
    value_field = "access_token"  # the item's attribute holding the token
    # Authorizer items are leased and written only while the authorization is active.
    active_only = False
    # Items the scheduled refresher keeps fresh (authorizer tokens, JS-SDK tickets).
    in_due_index = False
    # Seconds a token read from the table may be reused in this process without reading again
    # (never when it is due). WeChat keeps a replaced token valid for 5 minutes, and a refused
    # one is dropped at once (``invalidate``), so a short reuse is safe.
    memo_seconds = 0.0

    def __init__(self, store: Store | None = None) -> None:
        self.store = store or runtime.store()

    # --- hooks ------------------------------------------------------------------------------

    def check(self, item: dict[str, Any] | None) -> dict[str, Any]:
        return item or {}

    def fetch(self, item: dict[str, Any]) -> Fetched:
        raise NotImplementedError

    # --- TokenSource --------------------------------------------------------------------------

    def get(self) -> str:
        """A valid token, refreshing it through the lease when it is missing or due."""
        return self.current()[0]

    def current(self) -> tuple[str, float]:
        """A valid token and when it expires: one read of the table (none while remembered)."""
        remembered = self._remembered()
        if remembered is not None:
            return remembered
        give_up_at = time.monotonic() + WAIT_SECONDS
        while True:
            item = self.check(self.store.tokens.read(self.key))
            now = clock.now()
            valid = _is_valid(item, now, self.value_field)
            due = now >= float(item.get("expires_at", 0)) - REFRESH_BEFORE_SECONDS
            free = _lease_free(item, now)
            if valid and (not due or not free):
                value = str(item[self.value_field])
                if not due:
                    self._remember(value, float(item["expires_at"]))
                return value, float(item["expires_at"])
            if free:
                leased = self.store.tokens.take_lease(
                    self.key,
                    _owner(),
                    now,
                    now + LEASE_SECONDS,
                    version=item.get("version"),
                    active_only=self.active_only,
                )
                if leased is not None:
                    return self._refresh_or_serve(leased, item if valid else None)
                continue  # someone else took it between our read and our write: read again
            if time.monotonic() > give_up_at:
                metrics.add_metric("TokenWaitTimeout", MetricUnit.Count, 1)
                raise TokenBusy
            time.sleep(random.uniform(0.05, 0.15))  # noqa: S311 - jitter, not security

    def _refresh_or_serve(
        self, leased: dict[str, Any], still_valid: dict[str, Any] | None
    ) -> tuple[str, float]:
        """Refresh under the lease; when that fails (WeChat refusing or unreachable, the account
        to authorize again, the table refusing the write) a token that is due but still valid is
        served instead: WeChat honours it until it expires, so callers keep working meanwhile and
        the next caller tries again. A revoked account's token is gone already."""
        try:
            return self._refresh(leased)
        except Exception:
            if still_valid is None or not _is_valid(still_valid, clock.now(), self.value_field):
                raise
            metrics.add_metric("TokenServedUnrefreshed", MetricUnit.Count, 1)
            logger.warning(
                "refresh failed; the stored token is still valid and served", extra={"item": self.key}
            )
            return str(still_valid[self.value_field]), float(still_valid["expires_at"])

    def _memo_key(self) -> tuple[str, str, str]:
        return (self.store.table_name, self.store.component_appid, self.key)

    def _remembered(self) -> tuple[str, float] | None:
        if not self.memo_seconds:
            return None
        entry = runtime.token_memo().get(self._memo_key())
        if entry is None:
            return None
        token, expires_at, read_at = entry
        stale = time.monotonic() - read_at > self.memo_seconds
        return None if stale or clock.now() >= expires_at - REFRESH_BEFORE_SECONDS else (token, expires_at)

    def _remember(self, token: str, expires_at: float) -> None:
        if self.memo_seconds:
            runtime.token_memo()[self._memo_key()] = (token, expires_at, time.monotonic())

    def invalidate(self, token: str) -> None:
        """WeChat refused this exact token: expire it, unless a newer one is already stored."""
        runtime.token_memo().pop(self._memo_key(), None)
        applied = self.store.tokens.invalidate(self.key, token, self.value_field)
        metrics.add_metric("TokenInvalidated", MetricUnit.Count, 1)
        logger.warning("stored token refused by WeChat", extra={"item": self.key, "invalidated": applied})

    # --- refresh under the lease --------------------------------------------------------------

    def take_due_lease(self, horizon: float) -> dict[str, Any] | None:
        """The refresher's lease: only while the item is still due (nobody refreshed it meanwhile)."""
        now = clock.now()
        return self.store.tokens.take_due_lease(
            self.key, _owner(), now, now + LEASE_SECONDS, horizon, active_only=self.active_only
        )

    def refresh_leased(self, leased: dict[str, Any]) -> str:
        """Fetch a new token while holding the lease and store it; returns the new token."""
        return self._refresh(leased)[0]

    def _refresh(self, leased: dict[str, Any]) -> tuple[str, float]:
        owner = str(leased["lease_owner"])
        try:
            with deadline(float(leased["lease_until"]) - LEASE_MARGIN_SECONDS):
                fetched = self.fetch(leased)
        except BaseException:
            self.store.tokens.release(self.key, owner)
            raise
        now = clock.now()
        expires_at = now + fetched.expires_in
        values: dict[str, Any] = {
            self.value_field: fetched.value,
            "expires_at": expires_at,
            "refreshed_at": now,
            **fetched.extra,
        }
        applied = self._save(
            owner, values, expires_at - REFRESH_BEFORE_SECONDS if self.in_due_index else None
        )
        if applied:
            self._remember(fetched.value, expires_at)
        metrics.add_metric("TokenRefreshed", MetricUnit.Count, 1)
        if not applied:
            # Our lease ran out and someone else took over; their write stands.
            metrics.add_metric("TokenLeaseLost", MetricUnit.Count, 1)
            logger.warning("lease lost before the token was stored", extra={"item": self.key})
        return fetched.value, expires_at

    def _save(self, owner: str, values: dict[str, Any], due_at: float | None) -> bool:
        # WeChat has already answered: a rotated refresh token exists only in memory now, so a
        # failing write is retried before giving up (the next refresh recovers it otherwise).
        for attempt in range(3):
            try:
                return self.store.tokens.save_refreshed(
                    self.key, owner, values, due_at=due_at, active_only=self.active_only
                )
            except Exception:
                if attempt == 2:
                    metrics.add_metric("TokenSaveFailed", MetricUnit.Count, 1)
                    logger.exception("could not store a refreshed token", extra={"item": self.key})
                    raise
        return False  # pragma: no cover - the loop returns or raises


class ComponentToken(LeasedToken):
    key = keys.COMPONENT_TOKEN_SK
    query_name = "component_access_token"
    memo_seconds = 30.0  # every authorizer refresh and login needs it: one read per 30 s, not per call

    def fetch(self, item: dict[str, Any]) -> Fetched:
        ticket = self.store.tickets.get()
        if ticket is None:
            self.request_ticket_push()
            raise NoTicket
        try:
            data = runtime.component_api().api_component_token(ticket.ticket)
        except WeChatTicketInvalid:
            self.request_ticket_push()
            raise
        metrics.add_metric("ComponentTokenFetched", MetricUnit.Count, 1)
        return Fetched(str(data["component_access_token"]), int(data.get("expires_in", 7200)), {})

    def request_ticket_push(self) -> bool:
        """Ask WeChat to (re)start ticket pushes, at most once per interval across all Lambdas."""
        applied = self.store.tickets.request_push(clock.now(), PUSH_REQUEST_INTERVAL)
        if applied:
            runtime.component_api().api_start_push_ticket()
            metrics.add_metric("TicketPushRequested", MetricUnit.Count, 1)
            logger.warning("no usable component_verify_ticket; asked WeChat to push one")
        return applied


class AuthorizerUnavailable(Conflict):
    reason = "authorizer is not active"


class AuthorizerToken(LeasedToken):
    active_only = True
    in_due_index = True

    def __init__(self, authorizer_appid: str, store: Store | None = None) -> None:
        super().__init__(store)
        self.authorizer_appid = authorizer_appid
        self.key = keys.authorizer_sk(authorizer_appid)

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

    def _check_lease(self, owner: str) -> None:
        """Before a further WeChat call in one refresh: the lease must still be ours (a revocation
        or a new authorization drops it)."""
        item = self.store.tokens.read(self.key) or {}
        if item.get("lease_owner") != owner:
            metrics.add_metric("TokenLeaseLost", MetricUnit.Count, 1)
            raise LeaseExpired

    def fetch(self, item: dict[str, Any]) -> Fetched:
        refresh_token = str(item["refresh_token"])
        owner = str(item["lease_owner"])
        component = ComponentToken(self.store)
        api = runtime.component_api()
        try:
            data = api.api_authorizer_token(self.authorizer_appid, refresh_token, component)
        except WeChatQuotaExceeded:
            raise  # refused before anything happened
        except WeChatRefreshTokenInvalid:
            self._check_lease(owner)
            recovered = self._recover_refresh_token(component)
            if recovered is None:  # WeChat no longer lists the authorization
                self._mark_needs_reauthorization(owner)
                raise
            if recovered != refresh_token:
                logger.warning(
                    "refresh token recovered from api_get_authorizer_info",
                    extra={"appid": self.authorizer_appid},
                )
                metrics.add_metric("RefreshTokenRecovered", MetricUnit.Count, 1)
            else:
                # WeChat still lists the authorization with this very refresh token: a refusal it
                # contradicts is tried once more before the account is given up.
                logger.warning(
                    "61023 for the refresh token WeChat lists as current; trying once more",
                    extra={"appid": self.authorizer_appid},
                )
            refresh_token = recovered
            try:
                data = api.api_authorizer_token(self.authorizer_appid, refresh_token, component)
            except WeChatRefreshTokenInvalid:
                self._mark_needs_reauthorization(owner)
                raise
        except LeaseExpired:
            raise  # no further WeChat call for this refresh; the next holder recovers through 61023
        except Exception:
            # WeChat may have rotated the refresh token and the answer was lost on the way (a
            # timeout, a 5xx, a dropped connection): keep the one WeChat holds now, so the
            # table never holds a refresh token WeChat no longer accepts.
            self._keep_current_refresh_token(component, refresh_token, owner)
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
            info = runtime.component_api().api_get_authorizer_info(self.authorizer_appid, component)
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
            applied = self.store.tokens.keep_refresh_token(self.key, owner, stored, current)
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
        self.store.tokens.mark_needs_reauth(self.key, owner, clock.now(), "61023")
        metrics.add_metric("AuthorizerNeedsReauthorization", MetricUnit.Count, 1)
        logger.error(
            "authorizer refresh token invalid (61023): the account must authorize again",
            extra={"appid": self.authorizer_appid},
        )


class NotAnOfficialAccount(BadRequest):
    reason = "this account is not an Official Account"


def require_active_official_account(store: Store, authorizer_appid: str) -> dict[str, Any]:
    """The authorization of an Official Account (or of an account whose kind is not known yet),
    active now: one consistent read, no WeChat call. Web OAuth and the JS-SDK are theirs alone."""
    item = store.authorizers.get(authorizer_appid)
    if item is None:
        raise NotFound("this account has not authorized the platform")
    if item.get("status") != "active":
        raise AuthorizerUnavailable("this account's authorization is not active")
    if (item.get("info") or {}).get("kind") not in (None, "official_account"):
        raise NotAnOfficialAccount
    return item


class JsapiTicket(LeasedToken):
    """An Official Account's JS-SDK ``jsapi_ticket`` (``cgi-bin/ticket/getticket?type=jsapi`` with
    the authorizer token; doc: developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/JS-SDK.html,
    appendix 1), one more leased token: one getticket call per lifetime however many pages ask at
    once. The item is made on first use (after a check that the account is an active Official
    Account, so unknown appids write nothing), kept fresh by the refresher while the account can
    get one, and deleted when the account revokes (``features.component_events``). Read once per
    call, never remembered in a process: a revocation is seen at once."""

    value_field = "ticket"
    in_due_index = True

    def __init__(self, authorizer_appid: str, store: Store | None = None) -> None:
        super().__init__(store)
        self.authorizer_appid = authorizer_appid
        self.key = keys.jsapi_ticket_sk(authorizer_appid)

    def check(self, item: dict[str, Any] | None) -> dict[str, Any]:
        item = item or {}
        if not _is_valid(item, clock.now(), self.value_field):
            require_active_official_account(self.store, self.authorizer_appid)
        return item

    def fetch(self, item: dict[str, Any]) -> Fetched:
        token = AuthorizerToken(self.authorizer_appid, self.store)
        data = runtime.account_api().get_jsapi_ticket(token)
        ticket = data.get("ticket")
        if not ticket:
            raise UpstreamError("WeChat answered getticket without a ticket")
        metrics.add_metric("JsapiTicketFetched", MetricUnit.Count, 1)
        return Fetched(
            str(ticket), int(data.get("expires_in", 7200)), {"authorizer_appid": self.authorizer_appid}
        )


def leased_token(sk: str, store: Store) -> LeasedToken | None:
    """The token an item of the due index holds (None for a key of no known kind)."""
    if sk.startswith(keys.AUTHORIZER_PREFIX):
        return AuthorizerToken(keys.authorizer_appid_of(sk), store)
    if sk.startswith(keys.JSAPI_TICKET_PREFIX):
        return JsapiTicket(sk.removeprefix(keys.JSAPI_TICKET_PREFIX), store)
    return None
