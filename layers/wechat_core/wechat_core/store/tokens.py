"""Token items (the component token, each authorizer's tokens, JS-SDK tickets) and their lease.

Every operation is one conditional write; the reasoning for each condition is beside it. A
lease is ``lease_owner`` + ``lease_until``; only its holder stores a refreshed token, and in
the same write as the rotated refresh token. ``active_only`` is for authorizer items: a lease is
taken, and a token stored, only while the authorization is active.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from boto3.dynamodb.conditions import Attr, ConditionBase

from wechat_core.store.keys import due_pk
from wechat_core.store.table import Table

_LEASE = ("lease_owner", "lease_until")


def _lease_free(now: float) -> ConditionBase:
    return Attr("lease_until").not_exists() | Attr("lease_until").lte(now)


def _active() -> ConditionBase:
    return Attr("status").eq("active")


class Tokens:
    def __init__(self, table: Table) -> None:
        self.table = table

    def read(self, sk: str) -> dict[str, Any] | None:
        return self.table.get(sk)

    def take_lease(
        self, sk: str, owner: str, now: float, until: float, *, version: int | None, active_only: bool
    ) -> dict[str, Any] | None:
        """The lease, if it is free and the item is still at the ``version`` the caller read (so a
        token someone stored meanwhile is not refreshed again). Returns the leased item."""
        condition = _lease_free(now) & (
            Attr("version").not_exists() if version is None else Attr("version").eq(version)
        )
        if active_only:
            condition = condition & _active() & Attr("refresh_token").exists()
        written = self.table.update(
            sk, set_values={"lease_owner": owner, "lease_until": until}, condition=condition, return_new=True
        )
        return written.item if written.applied else None

    def take_due_lease(
        self, sk: str, owner: str, now: float, until: float, horizon: float, *, active_only: bool
    ) -> dict[str, Any] | None:
        """The refresher's lease: only while the item is still due by ``horizon`` (nobody refreshed
        it since the due index listed it) and, for an authorizer, active."""
        condition = _lease_free(now) & Attr("due_at").lte(horizon)
        if active_only:
            condition = condition & _active() & Attr("refresh_token").exists()
        written = self.table.update(
            sk, set_values={"lease_owner": owner, "lease_until": until}, condition=condition, return_new=True
        )
        return written.item if written.applied else None

    def save_refreshed(
        self, sk: str, owner: str, values: Mapping[str, Any], *, due_at: float | None, active_only: bool
    ) -> bool:
        """The holder stores what WeChat answered and gives the lease back, in one write (with
        ``due_at``, the item goes into the due index). Fails when the lease is no longer ours (it
        ran out and someone took over: their write stands) or, for an authorizer, when it is no
        longer active (a revocation drops the lease anyway; this keeps a revoked item without
        tokens and out of the due index whatever path a write takes)."""
        condition: ConditionBase = Attr("lease_owner").eq(owner)
        if active_only:
            condition = condition & _active()
        if due_at is not None:
            values = {**values, "due_pk": due_pk(self.table.component_appid), "due_at": due_at}
        return self.table.update(
            sk,
            set_values=values,
            add={"version": 1},
            remove=(*_LEASE, "last_error", "failures"),
            condition=condition,
        ).applied

    def release(self, sk: str, owner: str) -> bool:
        return self.table.update(sk, remove=_LEASE, condition=Attr("lease_owner").eq(owner)).applied

    def invalidate(self, sk: str, token: str, field: str = "access_token") -> bool:
        """WeChat refused this exact token: expire it, unless a newer one is stored already."""
        return self.table.update(sk, set_values={"expires_at": 0}, condition=Attr(field).eq(token)).applied

    def retire(self, sk: str) -> bool:
        """Out of the due index: a JS-SDK ticket whose account can no longer get one is fetched again
        on its next use (after a new authorization), not by every scheduled run meanwhile."""
        return self.table.update(
            sk, remove=("due_pk", "due_at"), condition=Attr("lease_owner").not_exists() & Attr("pk").exists()
        ).applied

    def drop(self, sk: str) -> None:
        """The item goes (a revoked account's JS-SDK ticket). A refresh in flight cannot store its
        answer afterwards: its write requires its lease on the item, and the item is gone."""
        self.table.delete(sk)

    def keep_refresh_token(self, sk: str, owner: str, stored: str, current: str) -> bool:
        """A refresh whose answer was lost may have rotated the refresh token: keep WeChat's
        current one, if we still hold the lease and nobody changed the stored one meanwhile."""
        return self.table.update(
            sk,
            set_values={"refresh_token": current},
            condition=Attr("lease_owner").eq(owner) & Attr("refresh_token").eq(stored),
        ).applied

    def mark_needs_reauth(self, sk: str, owner: str, now: float, code: str) -> bool:
        """WeChat refuses the refresh token and no current one can be had: out of the due index,
        lease given back. Only by the lease holder, so a revocation meanwhile stays a revocation."""
        return self.table.update(
            sk,
            set_values={"status": "needs_reauth", "needs_reauth_at": now, "last_error": code},
            remove=(*_LEASE, "due_pk", "due_at"),
            condition=Attr("lease_owner").eq(owner),
        ).applied

    def back_off(self, sk: str, retry_at: float, code: str, now: float, *, count_failure: bool) -> bool:
        """Try again at ``retry_at``: only for an item nobody holds and still in the due index."""
        return self.table.update(
            sk,
            set_values={"due_at": retry_at, "last_error": code, "last_error_at": now},
            add={"failures": 1} if count_failure else None,
            condition=Attr("lease_owner").not_exists() & Attr("due_pk").exists(),
        ).applied
