"""Short-lived items under DynamoDB's TTL: authorization-link states, exchanged-code mappings,
Mini Program sessions, web OAuth states and identity tickets. TTL deletion lags by up to days, so
every read and every claim checks the expiry itself."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.conditions import Attr

from wechat_core.store.keys import (
    TTL_ATTRIBUTE,
    code_sk,
    oauth_state_sk,
    oauth_ticket_sk,
    session_sk,
    state_sk,
)
from wechat_core.store.table import Table


@dataclass(frozen=True, slots=True)
class StateClaim:
    """``link``: the state's item, now bound to the code; None when not claimed, and then
    ``used_by_another`` tells a live state another code completed from an unknown or expired one."""

    link: dict[str, Any] | None
    used_by_another: bool


@dataclass(frozen=True, slots=True)
class OAuthStateClaim:
    """``state``: the claimed state's item; None when refused, and then ``refusal`` says why:
    ``unknown`` (never issued, or expired), ``used`` or ``other_account``."""

    state: dict[str, Any] | None
    refusal: str | None = None


class Transient:
    def __init__(self, table: Table) -> None:
        self.table = table

    # --- generic -------------------------------------------------------------------------------

    def put(
        self, sk: str, attributes: Mapping[str, Any], ttl_seconds: float, now: float, *, only_new: bool
    ) -> bool:
        item = {**attributes, TTL_ATTRIBUTE: int(now + ttl_seconds)}
        return self.table.put(sk, item, condition=Attr("pk").not_exists() if only_new else None).applied

    def get(self, sk: str, now: float) -> dict[str, Any] | None:
        item = self.table.get(sk)
        if item is None or float(item.get(TTL_ATTRIBUTE, 0)) <= now:
            return None
        return item

    # --- authorization-link states -------------------------------------------------------------

    def put_state(self, state: str, attributes: Mapping[str, Any], ttl_seconds: float, now: float) -> bool:
        return self.put(state_sk(state), attributes, ttl_seconds, now, only_new=True)

    def claim_state(self, state: str, code_hash: str, now: float) -> StateClaim:
        """Bind an unexpired authorization-link state to the code completing through it, in one
        conditional write; the same code again is fine (a reload)."""
        written = self.table.update(
            state_sk(state),
            set_values={"used_by": code_hash, "used_at": now},
            condition=Attr("kind").eq("authorization")
            & Attr(TTL_ATTRIBUTE).gt(int(now))
            & (Attr("used_by").not_exists() | Attr("used_by").eq(code_hash)),
            return_new=True,
        )
        if written.applied:
            return StateClaim(written.item, used_by_another=False)
        old = written.item or {}
        live = old.get("kind") == "authorization" and float(old.get(TTL_ATTRIBUTE, 0)) > now
        return StateClaim(None, used_by_another=live and bool(old.get("used_by")))

    def release_state(self, state: str, code_hash: str) -> None:
        self.table.update(
            state_sk(state), remove=("used_by", "used_at"), condition=Attr("used_by").eq(code_hash)
        )

    # --- exchanged codes -----------------------------------------------------------------------

    def put_code_mapping(self, code_hash: str, authorizer_appid: str, ttl_seconds: float, now: float) -> None:
        self.put(code_sk(code_hash), {"authorizer_appid": authorizer_appid}, ttl_seconds, now, only_new=False)

    def code_mapping(self, code_hash: str, now: float) -> str | None:
        """The appid an authorization code was exchanged for, while we remember it."""
        item = self.get(code_sk(code_hash), now)
        return str(item["authorizer_appid"]) if item else None

    # --- Mini Program sessions -----------------------------------------------------------------

    def put_session(
        self, session_token: str, attributes: Mapping[str, Any], ttl_seconds: float, now: float
    ) -> bool:
        return self.put(session_sk(session_token), attributes, ttl_seconds, now, only_new=True)

    def session(self, session_token: str, now: float) -> dict[str, Any] | None:
        return self.get(session_sk(session_token), now)

    # --- web OAuth -----------------------------------------------------------------------------

    def put_oauth_state(
        self, state: str, attributes: Mapping[str, Any], ttl_seconds: float, now: float
    ) -> bool:
        return self.put(
            oauth_state_sk(state), {**attributes, "kind": "oauth_state"}, ttl_seconds, now, only_new=True
        )

    def claim_oauth_state(self, state: str, appid: str, now: float) -> OAuthStateClaim:
        """Use a web OAuth state, once, for the account it was issued for, before it expires: one
        conditional write, which answers with the item when it refuses."""
        written = self.table.update(
            oauth_state_sk(state),
            set_values={"used_at": now},
            condition=Attr("kind").eq("oauth_state")
            & Attr(TTL_ATTRIBUTE).gt(int(now))
            & Attr("appid").eq(appid)
            & Attr("used_at").not_exists(),
            return_new=True,
        )
        if written.applied:
            return OAuthStateClaim(written.item)
        old = written.item or {}
        if old.get("kind") != "oauth_state" or float(old.get(TTL_ATTRIBUTE, 0)) <= now:
            return OAuthStateClaim(None, "unknown")
        return OAuthStateClaim(None, "other_account" if old.get("appid") != appid else "used")

    def put_identity(self, ticket: str, identity: Mapping[str, Any], ttl_seconds: float, now: float) -> bool:
        return self.put(
            oauth_ticket_sk(ticket),
            {"kind": "oauth_ticket", "identity": dict(identity)},
            ttl_seconds,
            now,
            only_new=True,
        )

    def redeem_identity(self, ticket: str, now: float) -> tuple[dict[str, Any] | None, bool]:
        """The identity a ticket holds, once: one conditional write marks the ticket redeemed and
        removes the identity from the table, answering with it. ``(None, used)`` when refused."""
        written = self.table.update(
            oauth_ticket_sk(ticket),
            set_values={"redeemed_at": now},
            remove=("identity",),
            condition=Attr("kind").eq("oauth_ticket")
            & Attr(TTL_ATTRIBUTE).gt(int(now))
            & Attr("redeemed_at").not_exists(),
            return_old=True,
        )
        if written.applied and written.item:
            return dict(written.item.get("identity") or {}), False
        old = written.item or {}
        return None, old.get("kind") == "oauth_ticket" and "redeemed_at" in old
