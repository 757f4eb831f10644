"""Authorizer accounts (official accounts and mini programs) and the credentials WeChat issues
for them: ``authorizer_refresh_token``, ``authorizer_access_token``.

Rules (shared/wechat-protocol.md §4):

- the refresh token lives until the owner revokes the authorization; re-authorizing kills it,
  and the next ``api_query_auth`` hands out a new one;
- ``api_authorizer_token`` normally answers the refresh token it was given. With rotation on
  (per account), each successful call answers a NEW refresh token and the previous ones stay
  accepted for ``grace_seconds`` (WeChat's transition is five minutes);
- a new access token leaves the previous one usable for five minutes, as component tokens do;
- revoking the authorization kills every token and every unused authorization code at once.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from wechat_simulator import pusher
from wechat_simulator.component import component_call_error
from wechat_simulator.protocol import SimError, api, error
from wechat_simulator.state import GRACE_SECONDS, TOKEN_LIFETIME, Issued, SimState, random_text

KINDS = ("official_account", "mini_program")
MAX_LIST_COUNT = 500

# The permission sets (func_info ids) an account grants when the link names none.
DEFAULT_FUNC_INFO = {
    "official_account": [1, 2, 3, 4, 6, 7, 11, 15, 22, 23, 24, 26, 33, 35],
    "mini_program": [17, 18, 19, 25, 30, 31, 36, 37, 40, 41, 45, 48, 49, 51, 52, 57, 65, 67, 70, 71],
}

# Profile fields a test may set when it adds an account, with their types.
PROFILE_FIELDS: dict[str, type] = {
    "user_name": str,
    "principal_name": str,
    "alias": str,
    "signature": str,
    "head_img": str,
    "qrcode_url": str,
    "service_type": int,
    "verify_type": int,
    "account_status": int,
    "visit_status": int,
    "categories": list,
}


@dataclass
class Account:
    """One simulated official account or mini program and its authorization to the component."""

    appid: str
    kind: str
    user_name: str
    nick_name: str
    unionid_bound: bool
    principal_name: str
    alias: str
    signature: str
    head_img: str
    qrcode_url: str
    service_type: int  # 0/1 subscription account (and every mini program), 2 service account
    verify_type: int  # -1 unverified, 0 WeChat-verified
    account_status: int = 1  # 1 ok, 14 cancelled, 16 banned, 18 warned, 19 frozen
    visit_status: int = 0
    categories: list[dict[str, str]] = field(default_factory=list)
    # The authorization.
    authorized: bool = False
    auth_time: int | None = None
    func_info: list[int] = field(default_factory=list)
    refresh_tokens: list[Issued] = field(default_factory=list)
    access_tokens: list[Issued] = field(default_factory=list)
    rotation: bool = False
    rotation_grace: float = GRACE_SECONDS
    # Mini Program login: calls of jscode2session in the last minute, and the limit (None: none).
    jscode_limit_per_minute: int | None = None
    jscode_calls: list[float] = field(default_factory=list)

    @property
    def is_mini_program(self) -> bool:
        return self.kind == "mini_program"

    # --- credentials -----------------------------------------------------------------------

    def current_refresh_token(self, now: float) -> Issued | None:
        """The newest accepted refresh token (what ``api_get_authorizer_list`` shows)."""
        return next((t for t in reversed(self.refresh_tokens) if t.valid(now)), None)

    def accepts_refresh_token(self, value: Any, now: float) -> bool:
        return isinstance(value, str) and any(t.value == value and t.valid(now) for t in self.refresh_tokens)

    def issue_refresh_token(self, now: float, grace: float) -> Issued:
        for token in self.refresh_tokens:
            token.supersede(now, grace)
        issued = Issued("refreshtoken@@@" + random_text(43), math.inf)
        self.refresh_tokens.append(issued)
        del self.refresh_tokens[:-20]
        return issued

    def refresh_token_for_exchange(self, now: float) -> Issued:
        """The refresh token ``api_query_auth`` answers: the live one, or a new one after a
        (re-)authorization killed the previous."""
        live = next((t for t in self.refresh_tokens if t.superseded_at is None and t.valid(now)), None)
        return live or self.issue_refresh_token(now, GRACE_SECONDS)

    def issue_access_token(self, now: float) -> Issued:
        for token in self.access_tokens:
            token.supersede(now)
        issued = Issued("sim_aat_" + random_text(48), now + TOKEN_LIFETIME)
        self.access_tokens.append(issued)
        del self.access_tokens[:-20]
        return issued

    def authorize(self, now: float, func_info: list[int] | None) -> bool:
        """The owner confirmed an authorization; return whether it was authorized before."""
        was_authorized = self.authorized
        for token in self.refresh_tokens:  # re-authorizing kills the previous refresh token
            token.revoke(now)
        self.authorized = True
        self.auth_time = int(now)
        self.func_info = list(func_info) if func_info else list(DEFAULT_FUNC_INFO[self.kind])
        return was_authorized

    def revoke(self, now: float) -> None:
        self.authorized = False
        for token in [*self.refresh_tokens, *self.access_tokens]:
            token.revoke(now)

    # --- WeChat's shapes -------------------------------------------------------------------

    def func_info_json(self) -> list[dict[str, Any]]:
        return [{"funcscope_category": {"id": i}} for i in self.func_info]

    def authorizer_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "nick_name": self.nick_name,
            "head_img": self.head_img,
            "service_type_info": {"id": self.service_type},
            "verify_type_info": {"id": self.verify_type},
            "user_name": self.user_name,
            "principal_name": self.principal_name,
            "alias": self.alias,
            "business_info": {
                "open_store": 0,
                "open_scan": 0,
                "open_pay": 0,
                "open_card": 0,
                "open_shake": 0,
            },
            "qrcode_url": self.qrcode_url,
            "account_status": self.account_status,
            "signature": self.signature,
        }
        if self.is_mini_program:
            info["MiniProgramInfo"] = {
                "network": {
                    "RequestDomain": [],
                    "WsRequestDomain": [],
                    "UploadDomain": [],
                    "DownloadDomain": [],
                    "BizDomain": [],
                    "UDPDomain": [],
                    "TCPDomain": [],
                },
                "categories": self.categories,
                "visit_status": self.visit_status,
            }
        return info

    def describe(self, now: float) -> dict[str, Any]:
        """The account and its authorization, for ``GET /__sim/accounts/<appid>``."""
        return {
            "appid": self.appid,
            "kind": self.kind,
            "user_name": self.user_name,
            "nick_name": self.nick_name,
            "unionid_bound": self.unionid_bound,
            "principal_name": self.principal_name,
            "alias": self.alias,
            "signature": self.signature,
            "head_img": self.head_img,
            "qrcode_url": self.qrcode_url,
            "service_type": self.service_type,
            "verify_type": self.verify_type,
            "account_status": self.account_status,
            "authorized": self.authorized,
            "auth_time": self.auth_time,
            "func_info": list(self.func_info) if self.authorized else [],
            "refresh_tokens": [t.describe() for t in self.refresh_tokens if t.valid(now)],
            "access_tokens": [t.describe() for t in self.access_tokens if t.valid(now)],
            "rotation": {"enabled": self.rotation, "grace_seconds": self.rotation_grace},
            "jscode_limit_per_minute": self.jscode_limit_per_minute,
        }


# --- managing accounts (control routes and Simulator methods) -------------------------------


def add_account(
    state: SimState,
    kind: str,
    *,
    appid: str | None = None,
    nick_name: str | None = None,
    unionid_bound: bool = False,
    **profile: Any,
) -> Account:
    if kind not in KINDS:
        raise SimError("invalid_kind", f"kind must be one of {', '.join(KINDS)}")
    if appid is not None and (not isinstance(appid, str) or not appid):
        raise SimError("invalid_appid", "appid must be a non-empty string")
    if nick_name is not None and not isinstance(nick_name, str):
        raise SimError("invalid_nick_name", "nick_name must be a string")
    if not isinstance(unionid_bound, bool):
        raise SimError("invalid_unionid_bound", "unionid_bound must be true or false")
    for name, value in profile.items():
        expected = PROFILE_FIELDS.get(name)
        if expected is None:
            raise SimError("unknown_field", f"unknown account field {name!r}")
        if not isinstance(value, expected) or isinstance(value, bool):
            raise SimError("invalid_field", f"{name} must be of type {expected.__name__}")
    mini = kind == "mini_program"
    account = Account(
        appid=appid or "wx" + secrets.token_hex(8),
        kind=kind,
        user_name=profile.pop("user_name", None) or "gh_" + secrets.token_hex(6),
        nick_name=nick_name or ("sim mini program " if mini else "sim account ") + secrets.token_hex(2),
        unionid_bound=unionid_bound,
        principal_name=profile.pop("principal_name", "Simulated Company Ltd."),
        alias=profile.pop("alias", "" if mini else "sim_" + secrets.token_hex(3)),
        signature=profile.pop("signature", "A simulated WeChat account."),
        head_img=profile.pop("head_img", "http://wx.qlogo.cn/mmopen/" + random_text(40) + "/0"),
        qrcode_url=profile.pop("qrcode_url", "http://mmbiz.qpic.cn/mmbiz_jpg/" + random_text(40) + "/0"),
        service_type=profile.pop("service_type", 0 if mini else 2),
        verify_type=profile.pop("verify_type", 0),
        categories=profile.pop("categories", [{"first": "工具", "second": "效率"}] if mini else []),
        **profile,
    )
    with state.lock:
        if account.appid in state.accounts:
            raise SimError("account_exists", f"account {account.appid} already exists", 409)
        state.accounts[account.appid] = account
    return account


def get_account(state: SimState, appid: str) -> Account:
    with state.lock:
        account = state.accounts.get(appid)
    if account is None:
        raise SimError("unknown_account", f"no simulated account {appid}", 404)
    return account


def describe_account(state: SimState, appid: str) -> dict[str, Any]:
    with state.lock:
        return get_account(state, appid).describe(state.now())


def set_rotation(state: SimState, appid: str, enabled: Any, grace_seconds: Any = GRACE_SECONDS) -> Account:
    if not isinstance(enabled, bool):
        raise SimError("invalid_enabled", "enabled must be true or false")
    if not isinstance(grace_seconds, int | float) or isinstance(grace_seconds, bool) or grace_seconds < 0:
        raise SimError("invalid_grace_seconds", "grace_seconds must be a number >= 0")
    with state.lock:
        account = get_account(state, appid)
        account.rotation = enabled
        account.rotation_grace = float(grace_seconds)
        return account


def set_jscode_limit(state: SimState, appid: str, per_minute: Any) -> Account:
    if per_minute is not None and (
        not isinstance(per_minute, int) or isinstance(per_minute, bool) or per_minute < 0
    ):
        raise SimError("invalid_per_minute", "per_minute must be an integer >= 0 or null")
    with state.lock:
        account = get_account(state, appid)
        account.jscode_limit_per_minute = per_minute
        account.jscode_calls.clear()
        return account


def revoke(state: SimState, appid: str, *, push: bool = True) -> dict[str, Any]:
    """The owner cancels the authorization: tokens and unused codes die, ``unauthorized`` is pushed
    (synchronously, before this returns) when a callback URL is configured."""
    now = state.now()
    with state.lock:
        account = get_account(state, appid)
        if not account.authorized:
            raise SimError("not_authorized", f"account {appid} is not authorized", 409)
        account.revoke(now)
        for code in state.authorization_codes.values():
            if code.appid == appid:
                code.revoked = True
        event = pusher.unauthorized_xml(state, appid, int(now))
    result = pusher.push_to_callback(state, event) if push else None
    return {"appid": appid, "authorized": False, "event": event, "push": result}


# --- WeChat APIs ----------------------------------------------------------------------------


def _authorized_account(state: SimState, appid: Any) -> Account | None:
    account = state.accounts.get(appid) if isinstance(appid, str) else None
    return account if account is not None and account.authorized else None


@api("/cgi-bin/component/api_authorizer_token")
def api_authorizer_token(state: SimState, body: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
    with state.lock:
        refused = component_call_error(state, query, body.get("component_appid"))
        if refused:
            return refused
        if not body.get("authorizer_appid"):
            return error(41002)
        now = state.now()
        account = _authorized_account(state, body["authorizer_appid"])
        refresh_token = body.get("authorizer_refresh_token")
        # Unknown, superseded beyond its grace, another account's, or authorization revoked.
        if account is None or not account.accepts_refresh_token(refresh_token, now):
            return error(61023)
        access = account.issue_access_token(now)
        if account.rotation:
            refresh_token = account.issue_refresh_token(now, account.rotation_grace).value
        return {
            "authorizer_access_token": access.value,
            "expires_in": TOKEN_LIFETIME,
            "authorizer_refresh_token": refresh_token,
        }


@api("/cgi-bin/component/api_get_authorizer_info")
def api_get_authorizer_info(state: SimState, body: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
    with state.lock:
        refused = component_call_error(state, query, body.get("component_appid"))
        if refused:
            return refused
        if not body.get("authorizer_appid"):
            return error(41002)
        account = _authorized_account(state, body["authorizer_appid"])
        if account is None:
            return error(61003)
        current = account.current_refresh_token(state.now())
        return {
            "authorizer_info": account.authorizer_info(),
            "authorization_info": {
                "authorizer_appid": account.appid,
                "authorizer_refresh_token": current.value if current else "",
                "func_info": account.func_info_json(),
            },
        }


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


@api("/cgi-bin/component/api_get_authorizer_list")
def api_get_authorizer_list(state: SimState, body: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
    """Authorized accounts in the order they were added; ``refresh_token`` is the newest accepted
    one ("" when the authorization code was never exchanged)."""
    with state.lock:
        refused = component_call_error(state, query, body.get("component_appid"))
        if refused:
            return refused
        offset, count = body.get("offset"), body.get("count")
        # Both are JSON numbers; strings, floats, negatives and count over 500 are refused.
        if not (_is_int(offset) and _is_int(count)) or offset < 0 or not 0 < count <= MAX_LIST_COUNT:
            return error(40097)
        now = state.now()
        authorized = [a for a in state.accounts.values() if a.authorized]
        page = []
        for account in authorized[offset : offset + count]:
            current = account.current_refresh_token(now)
            page.append(
                {
                    "authorizer_appid": account.appid,
                    "refresh_token": current.value if current else "",
                    "auth_time": account.auth_time,
                }
            )
        return {"total_count": len(authorized), "list": page}
