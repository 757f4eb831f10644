"""Authorization items: the state of each account's authorization, moved by WeChat's pushes,
by our exchanges of authorization codes and by recovery from WeChat's authorizer list.

Ordering: ``last_event_time`` is WeChat's CreateTime of the last push applied, ``activated_at``
our clock when the exchange that last activated the authorization started. A push moves the
state only when it is newer than both, and a revocation wins a tie (fail closed): it applies at
``>=`` while an authorization needs ``>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from boto3.dynamodb.conditions import Attr, Key

from wechat_core.store.codec import plain
from wechat_core.store.keys import (
    AUTHORIZER_PREFIX,
    DUE_INDEX,
    TTL_ATTRIBUTE,
    authorizer_appid_of,
    authorizer_sk,
    due_pk,
    event_sk,
)
from wechat_core.store.table import Table

EVENT_RETENTION_SECONDS = 90 * 24 * 3600
# Items written before codes were kept as hashes held the plaintext code: every write that
# touches a pending code removes those too.
_LEGACY_CODE = ("authorization_code", "authorization_code_expires_at")


class Authorizers:
    def __init__(self, table: Table) -> None:
        self.table = table

    def get(self, authorizer_appid: str, *, consistent: bool = True) -> dict[str, Any] | None:
        return self.table.get(authorizer_sk(authorizer_appid), consistent=consistent)

    def _audit(self, authorizer_appid: str, info_type: str, create_time: int, now: int) -> None:
        self.table.put(
            event_sk(authorizer_appid, create_time, info_type),
            {
                "authorizer_appid": authorizer_appid,
                "info_type": info_type,
                "create_time": create_time,
                "received_at": now,
                TTL_ATTRIBUTE: now + EVENT_RETENTION_SECONDS,
            },
        )

    def record_authorized(
        self, authorizer_appid: str, info_type: str, create_time: int, code_hash: str, now: int
    ) -> bool:
        """An ``authorized``/``updateauthorized`` push: audited, then recorded if newer than all the
        item knows. A re-delivery of the same push (same time, same code) applies again, so an
        exchange that failed half way is retried when WeChat re-sends. Only the code's hash is
        kept: it identifies a re-delivery and is no credential. Returns whether it applied; one
        that did not must not be exchanged."""
        self._audit(authorizer_appid, info_type, create_time, now)
        newer = (Attr("activated_at").not_exists() | Attr("activated_at").lt(create_time)) & (
            Attr("last_event_time").not_exists()
            | Attr("last_event_time").lt(create_time)
            | (Attr("last_event_time").eq(create_time) & Attr("pending_code").eq(code_hash))
        )
        return self.table.update(
            authorizer_sk(authorizer_appid),
            set_values={
                "authorizer_appid": authorizer_appid,
                "last_event": info_type,
                "last_event_time": create_time,
                "updated_at": now,
                "pending_code": code_hash,
            },
            # The status moves to active only when the exchange stores the tokens.
            set_if_missing={"status": "pending"},
            remove=_LEGACY_CODE,
            condition=newer,
        ).applied

    def revoke(self, authorizer_appid: str, create_time: int, now: int) -> bool:
        """An ``unauthorized`` push: tokens, lease and due entry go; ``last_revoked_at`` stays through
        a later re-authorization (sessions made before it have ended). Returns whether it applied."""
        self._audit(authorizer_appid, "unauthorized", create_time, now)
        not_older = (Attr("activated_at").not_exists() | Attr("activated_at").lte(create_time)) & (
            Attr("last_event_time").not_exists() | Attr("last_event_time").lte(create_time)
        )
        return self.table.update(
            authorizer_sk(authorizer_appid),
            set_values={
                "authorizer_appid": authorizer_appid,
                "last_event": "unauthorized",
                "last_event_time": create_time,
                "updated_at": now,
                "status": "revoked",
                "revoked_at": create_time,
                "last_revoked_at": create_time,
            },
            remove=(
                "due_pk",
                "due_at",
                "pending_code",
                "access_token",
                "refresh_token",
                "expires_at",
                "lease_owner",
                "lease_until",
                *_LEGACY_CODE,
            ),
            condition=not_older,
        ).applied

    def activate(
        self,
        authorizer_appid: str,
        *,
        refresh_token: str,
        access_token: str,
        expires_at: float,
        due_at: float,
        func_info: Sequence[int],
        started: int,
        now: float,
    ) -> bool:
        """Store an exchanged authorization. Refused when a revocation is recorded that is not older
        than the exchange's start: WeChat voids unused codes when an account revokes, so a code it
        still accepts proves a re-authorization after any revocation recorded before; one in the
        same second or later stands. A lease taken before belonged to a refresh with the old
        refresh token, which the new authorization invalidated: it is dropped, so its write fails."""
        return self.table.update(
            authorizer_sk(authorizer_appid),
            set_values={
                "authorizer_appid": authorizer_appid,
                "status": "active",
                "refresh_token": refresh_token,
                "access_token": access_token,
                "expires_at": expires_at,
                "refreshed_at": now,
                "authorized_at": now,
                "activated_at": started,
                "func_info": list(func_info),
                "due_pk": due_pk(self.table.component_appid),
                "due_at": due_at,
            },
            add={"version": 1},
            remove=(
                "revoked_at",
                "needs_reauth_at",
                "pending_code",
                "lease_owner",
                "lease_until",
                "last_error",
                "failures",
                *_LEGACY_CODE,
            ),
            condition=Attr("revoked_at").not_exists() | Attr("revoked_at").lt(started),
        ).applied

    def forget_pending_code(self, authorizer_appid: str, code_hash: str) -> None:
        """A push whose code WeChat exchanged for another account: the item that push created
        (pending, never active) goes; an existing authorization only loses the hash."""
        sk = authorizer_sk(authorizer_appid)
        created_by_the_push = (
            Attr("pending_code").eq(code_hash)
            & Attr("status").eq("pending")
            & Attr("refresh_token").not_exists()
            & Attr("activated_at").not_exists()
        )
        if not self.table.delete(sk, condition=created_by_the_push).applied:
            self.table.update(sk, remove=("pending_code",), condition=Attr("pending_code").eq(code_hash))

    def record_audit(self, authorizer_appid: str, audit: dict[str, Any], now: float) -> None:
        """The last code-audit result WeChat pushed for a Mini Program (``last_audit``), unless one
        pushed later is already recorded (events can arrive out of order)."""
        at = int(audit.get("create_time") or 0)
        self.table.update(
            authorizer_sk(authorizer_appid),
            set_values={"last_audit": audit, "last_audit_at": at, "updated_at": int(now)},
            condition=Attr("pk").exists()
            & (Attr("last_audit_at").not_exists() | Attr("last_audit_at").lte(at)),
        )

    def set_info(self, authorizer_appid: str, info: dict[str, Any], now: float) -> None:
        self.table.update(authorizer_sk(authorizer_appid), set_values={"info": info, "info_at": now})

    def restore(self, authorizer_appid: str, refresh_token: str, auth_time: int, now: float) -> bool:
        """A refresh token from WeChat's authorizer list, where ours is missing (a wiped or partly
        restored table) but not revoked by a later push; dead (61023) and WeChat now lists another;
        or revoked before WeChat's authorization time. The refresher fetches an access token on
        its next run."""
        condition = (
            (
                Attr("refresh_token").not_exists()
                & (Attr("status").not_exists() | Attr("status").ne("revoked"))
            )
            | (Attr("status").eq("needs_reauth") & Attr("refresh_token").ne(refresh_token))
            | (Attr("status").eq("revoked") & Attr("revoked_at").lt(auth_time))
        )
        return self.table.update(
            authorizer_sk(authorizer_appid),
            set_values={
                "authorizer_appid": authorizer_appid,
                "status": "active",
                "refresh_token": refresh_token,
                "recovered_at": now,
                "authorized_at": auth_time or int(now),
                "due_pk": due_pk(self.table.component_appid),
                "due_at": now,
                "expires_at": 0,
            },
            remove=("needs_reauth_at", "last_error", "failures"),
            condition=condition,
        ).applied

    def page(self, limit: int, after: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """Authorizations in appid order, ``limit`` at a time; the appid to go on after, or None."""
        start = self.table.key(authorizer_sk(after)) if after else None
        items, last = self.table.query(
            Key("pk").eq(self.table.pk) & Key("sk").begins_with(AUTHORIZER_PREFIX), limit=limit, start=start
        )
        return items, authorizer_appid_of(str(plain(last["sk"]))) if last else None

    def due(
        self, horizon: float, *, limit: int = 100, start: dict[str, Any] | None = None
    ) -> tuple[list[str], dict[str, Any] | None]:
        """Sort keys of the items due by ``horizon`` (authorizers and JS-SDK tickets), oldest first,
        from the sparse due index; and where to go on."""
        items, last = self.table.query(
            Key("due_pk").eq(due_pk(self.table.component_appid)) & Key("due_at").lte(horizon),
            index=DUE_INDEX,
            limit=limit,
            start=start,
        )
        return [str(i["sk"]) for i in items], last
