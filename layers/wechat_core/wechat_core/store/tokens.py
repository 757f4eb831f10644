"""Token items (the component token, and each authorizer's tokens) and their refresh lease.

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
        self, sk: str, owner: str, now: float, until: float, horizon: float
    ) -> dict[str, Any] | None:
        """The refresher's lease on an authorizer: only while it is active and still due by
        ``horizon`` (nobody refreshed it since the due index listed it)."""
        condition = (
            _lease_free(now) & _active() & Attr("refresh_token").exists() & Attr("due_at").lte(horizon)
        )
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

    def invalidate(self, sk: str, token: str) -> bool:
        """WeChat refused this exact token: expire it, unless a newer one is stored already."""
        return self.table.update(
            sk, set_values={"expires_at": 0}, condition=Attr("access_token").eq(token)
        ).applied

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
