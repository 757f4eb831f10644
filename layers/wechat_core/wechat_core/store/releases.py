"""Mini Program releases: one item per release in the platform's partition, and one item per
account and release in the release's own partition, so a release to thousands of accounts never
crowds the platform's items and its accounts are read by one query.

An account's ``state`` moves ``queued -> committed -> auditing -> approved -> released`` or to
``rejected``, ``delayed`` or ``failed``. A worker takes a step with a **claim** (``claim_owner`` +
``claim_until``), a conditional write that succeeds only from the states the step starts from and
while nobody else's claim is live; only the claim's holder moves the state on, and in the same
write gives the claim back. So a duplicate message, or two workers with the same message, make
the WeChat call once; a worker that died holding a claim is taken over when it runs out.
Audit events move the state without a claim, conditional on the states they come from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from boto3.dynamodb.conditions import Attr, ConditionBase, Key

from wechat_core.store.codec import plain
from wechat_core.store.keys import (
    DUE_INDEX,
    RELEASE_ACCOUNT_PREFIX,
    RELEASE_PREFIX,
    audit_due_pk,
    current_code_sk,
    release_account_sk,
    release_pk,
    release_sk,
)
from wechat_core.store.table import Table

_CLAIM = ("claim_owner", "claim_until")
SUMMARY_ATTRIBUTES = ("appid", "state")


def _state_in(states: Iterable[str]) -> ConditionBase:
    return Attr("state").is_in(list(states))


class Releases:
    def __init__(self, table: Table) -> None:
        self.table = table

    def _pk(self, release_id: str) -> str:
        return release_pk(self.table.component_appid, release_id)

    # --- releases ------------------------------------------------------------------------------

    def create(self, release_id: str, attributes: Mapping[str, Any]) -> bool:
        return self.table.put(
            release_sk(release_id), dict(attributes), condition=Attr("pk").not_exists()
        ).applied

    def forget(self, release_id: str) -> None:
        self.table.delete(release_sk(release_id))

    def get(self, release_id: str) -> dict[str, Any] | None:
        return self.table.get(release_sk(release_id), consistent=False)

    def update(self, release_id: str, values: Mapping[str, Any]) -> None:
        self.table.update(release_sk(release_id), set_values=values, condition=Attr("pk").exists())

    def page(self, limit: int, after: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """Releases, newest first (release ids start with their creation time)."""
        start = self.table.key(release_sk(after)) if after else None
        items, last = self.table.query(
            Key("pk").eq(self.table.pk) & Key("sk").begins_with(RELEASE_PREFIX),
            limit=limit,
            start=start,
            forward=False,
        )
        return items, str(plain(last["sk"])).removeprefix(RELEASE_PREFIX) if last else None

    # --- a release's accounts -------------------------------------------------------------------

    def add_account(self, release_id: str, appid: str, now: float) -> bool:
        """The account, queued. True when it needs its commit message: new, or added by an earlier
        attempt that may have died before sending it (still queued); False when it moved on."""
        written = self.table.put(
            release_account_sk(appid),
            {
                "appid": appid,
                "release_id": release_id,
                "state": "queued",
                "created_at": now,
                "changed_at": now,
            },
            condition=Attr("pk").not_exists(),
            pk=self._pk(release_id),
        )
        return written.applied or (written.item or {}).get("state") == "queued"

    def account(self, release_id: str, appid: str) -> dict[str, Any] | None:
        return self.table.get(release_account_sk(appid), pk=self._pk(release_id))

    def accounts(
        self, release_id: str, limit: int, after: str | None, *, attributes: tuple[str, ...] = ()
    ) -> tuple[list[dict[str, Any]], str | None]:
        """The release's accounts in appid order, ``limit`` at a time; the appid to go on after."""
        pk = self._pk(release_id)
        start = self.table.key(release_account_sk(after), pk) if after else None
        items, last = self.table.query(
            Key("pk").eq(pk) & Key("sk").begins_with(RELEASE_ACCOUNT_PREFIX),
            limit=limit,
            start=start,
            attributes=attributes,
        )
        return items, str(plain(last["sk"])).removeprefix(RELEASE_ACCOUNT_PREFIX) if last else None

    def claim(
        self, release_id: str, appid: str, *, states: Iterable[str], owner: str, now: float, until: float
    ) -> dict[str, Any] | None:
        """The account for one step, if it is in one of ``states`` and nobody's claim is live.
        Returns the claimed item; None when refused (``account`` tells why)."""
        written = self.table.update(
            release_account_sk(appid),
            set_values={"claim_owner": owner, "claim_until": until},
            add={"attempts": 1},
            condition=_state_in(states) & (Attr("claim_owner").not_exists() | Attr("claim_until").lte(now)),
            return_new=True,
            pk=self._pk(release_id),
        )
        return written.item if written.applied else None

    def move(
        self,
        release_id: str,
        appid: str,
        *,
        owner: str,
        state: str,
        now: float,
        values: Mapping[str, Any] | None = None,
        remove: tuple[str, ...] = (),
        audit_due_at: float | None = None,
    ) -> dict[str, Any] | None:
        """The claim's holder moves the account on and gives the claim back, in one write; with
        ``audit_due_at`` the account is listed for the scheduled audit check. Returns the new item,
        or None when the claim is no longer ours (it ran out and someone took over)."""
        set_values = {**(values or {}), "state": state, "changed_at": now}
        if audit_due_at is not None:
            set_values |= {"due_pk": audit_due_pk(self.table.component_appid), "due_at": audit_due_at}
        written = self.table.update(
            release_account_sk(appid),
            set_values=set_values,
            remove=(*_CLAIM, *remove, *(() if audit_due_at is not None else ("due_pk", "due_at"))),
            condition=Attr("claim_owner").eq(owner),
            return_new=True,
            pk=self._pk(release_id),
        )
        return written.item if written.applied else None

    def unclaim(self, release_id: str, appid: str, owner: str) -> None:
        """Give the claim back without moving on (the step is tried again later)."""
        self.table.update(
            release_account_sk(appid),
            remove=_CLAIM,
            condition=Attr("claim_owner").eq(owner),
            pk=self._pk(release_id),
        )

    def apply_audit(
        self,
        release_id: str,
        appid: str,
        *,
        from_states: Iterable[str],
        state: str,
        now: float,
        values: Mapping[str, Any],
        audit_due_at: float | None = None,
    ) -> dict[str, Any] | None:
        """An audit result moves the account from ``from_states`` (no claim: an event is applied
        once by its condition). Returns the new item, or None when the state did not allow it."""
        set_values = {**values, "state": state, "changed_at": now}
        remove: tuple[str, ...] = ("due_pk", "due_at", "early_audit")
        if audit_due_at is not None:
            set_values |= {"due_pk": audit_due_pk(self.table.component_appid), "due_at": audit_due_at}
            remove = ("early_audit",)
        written = self.table.update(
            release_account_sk(appid),
            set_values=set_values,
            remove=remove,
            condition=_state_in(from_states),
            return_new=True,
            pk=self._pk(release_id),
        )
        return written.item if written.applied else None

    def keep_early_audit(self, release_id: str, appid: str, audit: Mapping[str, Any]) -> bool:
        """An audit result that arrived while our submission was still being recorded: kept on the
        account, and applied by the submission's own write."""
        return self.table.update(
            release_account_sk(appid),
            set_values={"early_audit": dict(audit)},
            condition=Attr("state").eq("committed"),
            pk=self._pk(release_id),
        ).applied

    def due_audits(
        self, horizon: float, limit: int, start: dict[str, Any] | None
    ) -> tuple[list[tuple[str, str]], Any]:
        """(release id, appid) of the accounts whose audit is to be asked about by ``horizon``."""
        items, last = self.table.query(
            Key("due_pk").eq(audit_due_pk(self.table.component_appid)) & Key("due_at").lte(horizon),
            index=DUE_INDEX,
            limit=limit,
            start=start,
        )
        prefix = release_pk(self.table.component_appid, "")
        found = [
            (str(i["pk"]).removeprefix(prefix), str(i["sk"]).removeprefix(RELEASE_ACCOUNT_PREFIX))
            for i in items
        ]
        return found, last

    # --- which release a Mini Program's audit belongs to ---------------------------------------

    def set_current(self, appid: str, release_id: str, now: float) -> None:
        self.table.put(current_code_sk(appid), {"appid": appid, "release_id": release_id, "since": now})

    def current(self, appid: str) -> str | None:
        item = self.table.get(current_code_sk(appid))
        return str(item["release_id"]) if item else None
