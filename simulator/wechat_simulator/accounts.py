"""Authorizer accounts (official accounts and mini programs) and the credentials WeChat issues
for them: ``authorizer_refresh_token``, ``authorizer_access_token``.

Rules (shared/wechat-protocol.md §4):

- the refresh token lives until the owner revokes the authorization; re-authorizing kills it,
  and the next ``api_query_auth`` hands out a new one;
- ``api_authorizer_token`` normally answers the refresh token it was given. With rotation on
  (per account), each successful call answers a NEW refresh token and the previous ones stay
  accepted for ``grace_seconds`` (WeChat's transition is five minutes);
- a new access token leaves the previous one usable for five minutes, as component tokens do;
- revoking the authorization kills every token and every unused authorization code at once, and
  the account's unexchanged web OAuth codes (oauth.py).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any, TypeGuard

from wechat_simulator import pusher
from wechat_simulator.component import component_call_error
from wechat_simulator.protocol import ApiRoute, SimError, error
from wechat_simulator.records import GRACE_SECONDS, TOKEN_LIFETIME, Account, Issued, random_text
from wechat_simulator.state import SimState

KINDS = ("official_account", "mini_program")
MAX_LIST_COUNT = 500

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
    """A new simulated official account or mini program (not yet authorized)."""
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
    """The account and its authorization: accepted refresh and access tokens, func_info."""
    with state.lock:
        return get_account(state, appid).describe(state.now())


def list_accounts(state: SimState) -> list[dict[str, Any]]:
    with state.lock:
        now = state.now()
        return [a.describe(now) for a in state.accounts.values()]


def create_account(state: SimState, kind: str, **options: Any) -> dict[str, Any]:
    """``add_account``, answered as the control route and ``Simulator.add_account`` do."""
    return describe_account(state, add_account(state, kind, **options).appid)


def set_rotation(
    state: SimState, appid: str, enabled: Any = True, grace_seconds: Any = GRACE_SECONDS
) -> dict[str, Any]:
    """Rotation of refresh tokens on (each api_authorizer_token answers a new one) or off."""
    if not isinstance(enabled, bool):
        raise SimError("invalid_enabled", "enabled must be true or false")
    if not isinstance(grace_seconds, int | float) or isinstance(grace_seconds, bool) or grace_seconds < 0:
        raise SimError("invalid_grace_seconds", "grace_seconds must be a number >= 0")
    with state.lock:
        account = get_account(state, appid)
        account.rotation = enabled
        account.rotation_grace = float(grace_seconds)
        return account.describe(state.now())


def set_jscode_limit(state: SimState, appid: str, per_minute: Any) -> dict[str, Any]:
    """jscode2session calls allowed per minute for this mini program (None: no limit)."""
    if per_minute is not None and (
        not isinstance(per_minute, int) or isinstance(per_minute, bool) or per_minute < 0
    ):
        raise SimError("invalid_per_minute", "per_minute must be an integer >= 0 or null")
    with state.lock:
        account = get_account(state, appid)
        account.jscode_limit_per_minute = per_minute
        account.jscode_calls.clear()
        return account.describe(state.now())


def revoke(state: SimState, appid: str, *, push: bool = True) -> dict[str, Any]:
    """The owner cancels the authorization: tokens and unused codes (authorization codes, web OAuth
    codes) die, ``unauthorized`` is pushed (synchronously, before this returns) when a callback
    URL is configured."""
    now = state.now()
    with state.lock:
        account = get_account(state, appid)
        if not account.authorized:
            raise SimError("not_authorized", f"account {appid} is not authorized", 409)
        account.revoke(now)
        for code in state.authorization_codes.values():
            if code.appid == appid:
                code.revoked = True
        for oauth_code in state.oauth_codes.values():  # web OAuth codes not yet exchanged
            if oauth_code.appid == appid:
                oauth_code.revoked = True
        event = pusher.unauthorized_xml(state, appid, int(now))
    result = pusher.push_to_callback(state, event) if push else None
    return {"appid": appid, "authorized": False, "event": event, "push": result}


# --- WeChat APIs ----------------------------------------------------------------------------


def authorizer_token_account(
    state: SimState, query: dict[str, str]
) -> tuple[Account | None, dict[str, Any] | None]:
    """(the account, None) for an ``access_token=`` that is a current authorizer_access_token,
    else (None, WeChat's answer), as every API taking an authorizer token checks it: missing
    41001; never issued (a component token too) 40001; issued but expired, or superseded beyond
    its five-minute grace, 42001; its account's authorization revoked 40001. Call under the lock."""
    token = query.get("access_token")
    if not token:
        return None, error(41001)
    now = state.now()
    owner = state.authorizer_tokens.get(token)
    # O(1) through the index issue_access_token keeps; a token it does not know (never issued,
    # or issued by other code) is looked for among all accounts.
    candidates: Iterable[Account] = (
        [state.accounts[owner]] if owner in state.accounts else state.accounts.values()
    )
    for account in candidates:
        issued = next((t for t in account.access_tokens if t.value == token), None)
        if issued is None:
            continue
        if not account.authorized:
            return None, error(40001)
        if not issued.valid(now):
            return None, error(42001)
        return account, None
    return None, error(40001)


def issue_access_token(state: SimState, account: Account, now: float) -> Issued:
    """A new authorizer_access_token for ``account`` (the previous ones start their grace), kept
    in the index ``authorizer_token_account`` reads. Call under the lock."""
    before = {t.value for t in account.access_tokens}
    issued = account.issue_access_token(now)
    kept = {t.value for t in account.access_tokens}
    for value in before - kept:  # dropped from the account's last 20
        state.authorizer_tokens.pop(value, None)
    state.authorizer_tokens[issued.value] = account.appid
    return issued


def _authorized_account(state: SimState, appid: Any) -> Account | None:
    account = state.accounts.get(appid) if isinstance(appid, str) else None
    return account if account is not None and account.authorized else None


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
        access = issue_access_token(state, account, now)
        if account.rotation:
            refresh_token = account.issue_refresh_token(now, account.rotation_grace).value
        return {
            "authorizer_access_token": access.value,
            "expires_in": TOKEN_LIFETIME,
            "authorizer_refresh_token": refresh_token,
        }


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
            "authorizer_info": authorizer_info(account),
            "authorization_info": {
                "authorizer_appid": account.appid,
                "authorizer_refresh_token": current.value if current else "",
                "func_info": account.func_info_json(),
            },
        }


def authorizer_info(account: Account) -> dict[str, Any]:
    """``authorizer_info`` as api_get_authorizer_info answers it."""
    info: dict[str, Any] = {
        "nick_name": account.nick_name,
        "head_img": account.head_img,
        "service_type_info": {"id": account.service_type},
        "verify_type_info": {"id": account.verify_type},
        "user_name": account.user_name,
        "principal_name": account.principal_name,
        "alias": account.alias,
        "business_info": {
            "open_store": 0,
            "open_scan": 0,
            "open_pay": 0,
            "open_card": 0,
            "open_shake": 0,
        },
        "qrcode_url": account.qrcode_url,
        "account_status": account.account_status,
        "signature": account.signature,
    }
    if account.is_mini_program:
        domains = account.server_domains
        info["MiniProgramInfo"] = {
            "network": {  # the server domains wxa/modify_domain set (code_management.py)
                "RequestDomain": list(domains.get("requestdomain", [])),
                "WsRequestDomain": list(domains.get("wsrequestdomain", [])),
                "UploadDomain": list(domains.get("uploaddomain", [])),
                "DownloadDomain": list(domains.get("downloaddomain", [])),
                "BizDomain": [],
                "UDPDomain": list(domains.get("udpdomain", [])),
                "TCPDomain": list(domains.get("tcpdomain", [])),
            },
            "categories": account.categories,
            "visit_status": account.visit_status,
        }
    return info


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


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


APIS = (
    ApiRoute("/cgi-bin/component/api_authorizer_token", "POST", api_authorizer_token),
    ApiRoute("/cgi-bin/component/api_get_authorizer_info", "POST", api_get_authorizer_info),
    ApiRoute("/cgi-bin/component/api_get_authorizer_list", "POST", api_get_authorizer_list),
)
