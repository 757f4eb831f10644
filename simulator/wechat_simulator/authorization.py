"""Authorizing the component: pre-auth codes, authorization links, the owner's decision,
authorization codes and ``api_query_auth`` (shared/wechat-protocol.md §3 "Authorization links",
§4). The pages that show a link to the owner are in ``pages.py``.

- ``api_create_preauthcode`` gives a ``pre_auth_code`` valid 1800 s, usable once.
- A link is checked before anyone acts on it (``check_request``), then the account against it
  (``check_eligible``: biz_appid, auth_type).
- Approving answers the redirect ``redirect_uri?auth_code=queryauthcode@@@…&expires_in=3600``
  and, with a callback URL configured, pushes ``authorized`` (``updateauthorized`` when the
  account already was) *before* answering, so a test sees both once the redirect arrives.
- Refusing answers ``redirect_uri`` unchanged (WeChat itself just shows nothing).
- The authorization code is valid 3600 s, usable once: invalid 61009, expired 61010,
  used 40163.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from wechat_simulator import pusher
from wechat_simulator.accounts import get_account, issue_access_token
from wechat_simulator.component import component_call_error
from wechat_simulator.protocol import ApiRoute, SimError, error
from wechat_simulator.records import (
    AUTHORIZATION_CODE_LIFETIME,
    PRE_AUTH_CODE_LIFETIME,
    TOKEN_LIFETIME,
    Account,
    Approval,
    AuthorizationCode,
    AuthorizationRequest,
    PreAuthCode,
    random_text,
)
from wechat_simulator.state import SimState

AUTH_TYPES = {1: ("official_account",), 2: ("mini_program",), 3: ("official_account", "mini_program")}
_CATEGORY_LIST = re.compile(r"\d+(\|\d+)*")


# --- links ----------------------------------------------------------------------------------


def parse_link(args: Mapping[str, str], *, mobile: bool = False) -> AuthorizationRequest:
    """The link's query as a page gets it; refusals raise SimError (the page's error reasons)."""
    if mobile and args.get("action") != "bindcomponent":
        raise SimError("invalid_action", "the mobile page needs action=bindcomponent")
    if mobile and args.get("no_scan") != "1":
        raise SimError("missing_no_scan", "the mobile page needs no_scan=1")
    for name in ("component_appid", "pre_auth_code", "redirect_uri"):
        if not args.get(name):
            raise SimError("missing_parameter", f"missing parameter {name}")
    auth_type = args.get("auth_type") or "3"
    if auth_type not in ("1", "2", "3"):
        raise SimError("invalid_auth_type", "auth_type must be 1, 2 or 3")
    categories = args.get("category_id_list") or ""
    if categories and not _CATEGORY_LIST.fullmatch(categories):
        raise SimError("invalid_category_id_list", "category_id_list must be ids joined by |")
    return AuthorizationRequest(
        component_appid=args["component_appid"],
        pre_auth_code=args["pre_auth_code"],
        redirect_uri=args["redirect_uri"],
        auth_type=int(auth_type),
        biz_appid=args.get("biz_appid") or None,
        category_id_list=tuple(int(i) for i in categories.split("|")) if categories else (),
    )


def link_from_spec(state: SimState, spec: Mapping[str, Any]) -> AuthorizationRequest:
    """A link from JSON-like values (``POST /__sim/authorize``, ``Simulator.approve``/``refuse``):
    ``pre_auth_code``, ``redirect_uri``, ``auth_type``?, ``biz_appid``?, ``category_id_list``?
    (``"1|2"`` or ``[1, 2]``), ``component_appid``? (default: this platform). Same checks as
    the page's query."""
    categories = spec.get("category_id_list") or ""
    if isinstance(categories, list | tuple):
        categories = "|".join(str(i) for i in categories)
    args = {
        "component_appid": str(spec.get("component_appid", state.platform.appid)),
        "pre_auth_code": str(spec.get("pre_auth_code") or ""),
        "redirect_uri": str(spec.get("redirect_uri") or ""),
        "auth_type": str(spec.get("auth_type") or "3"),
        "biz_appid": str(spec.get("biz_appid") or ""),
        "category_id_list": str(categories),
    }
    return parse_link(args)


# --- codes ----------------------------------------------------------------------------------


def new_pre_auth_code(state: SimState) -> PreAuthCode:
    code = PreAuthCode("preauthcode@@@" + random_text(64), state.now() + PRE_AUTH_CODE_LIFETIME)
    with state.lock:
        state.pre_auth_codes[code.value] = code
    return code


def _new_authorization_code(
    state: SimState, appid: str, now: float, value: str | None = None
) -> AuthorizationCode:
    """A new code; ``value`` chooses it (sample events), replacing any code of that value."""
    code = AuthorizationCode(
        value or "queryauthcode@@@" + random_text(64), appid, now + AUTHORIZATION_CODE_LIFETIME
    )
    state.authorization_codes[code.value] = code
    return code


def with_query(url: str, params: dict[str, str]) -> str:
    """``url`` plus ``params`` after its own query, '@' left as is (as WeChat's redirects show)."""
    parts = urlsplit(url)
    extra = urlencode(params, safe="@")
    return urlunsplit(parts._replace(query=f"{parts.query}&{extra}" if parts.query else extra))


# --- checks (the pages, /__sim/authorize and Simulator.approve make the same) ---------------


def check_request(state: SimState, request: AuthorizationRequest) -> None:
    """What WeChat refuses before anyone acts: another component, a bad pre-auth code, a bad
    redirect_uri, a biz_appid it does not know."""
    if request.component_appid != state.platform.appid:
        raise SimError("invalid_component", "component_appid is not this platform")
    redirect = urlsplit(request.redirect_uri)
    if redirect.scheme not in ("http", "https") or not redirect.netloc:
        raise SimError("invalid_redirect_uri", "redirect_uri must be an absolute http(s) URL")
    with state.lock:
        code = state.pre_auth_codes.get(request.pre_auth_code)
        if code is None:
            raise SimError("invalid_pre_auth_code", "unknown pre_auth_code")
        if code.used_by is not None:
            raise SimError("pre_auth_code_used", "pre_auth_code was already used")
        if state.now() >= code.expires_at:
            raise SimError("pre_auth_code_expired", "pre_auth_code expired")
        if request.biz_appid is not None and request.biz_appid not in state.accounts:
            raise SimError("invalid_biz_appid", "biz_appid is not a known account")


def check_eligible(request: AuthorizationRequest, account: Account) -> None:
    """biz_appid restricts the page to one account and wins over auth_type."""
    if request.biz_appid is not None:
        if account.appid != request.biz_appid:
            raise SimError("account_not_allowed", "the link is restricted to another account (biz_appid)")
        return
    if account.kind not in AUTH_TYPES[request.auth_type]:
        raise SimError("account_kind_not_allowed", f"auth_type {request.auth_type} excludes a {account.kind}")


def eligible_accounts(state: SimState, request: AuthorizationRequest) -> list[Account]:
    allowed = []
    with state.lock:
        for account in state.accounts.values():
            try:
                check_eligible(request, account)
            except SimError:
                continue
            allowed.append(account)
    return allowed


# --- the owner's decision -------------------------------------------------------------------


def approve(
    state: SimState, request: AuthorizationRequest, account_appid: str, *, push: bool = True
) -> Approval:
    with state.lock:
        check_request(state, request)
        account = get_account(state, account_appid)
        check_eligible(request, account)
        now = state.now()
        state.pre_auth_codes[request.pre_auth_code].used_by = account.appid
        was_authorized = account.authorize(now, list(request.category_id_list))
        code = _new_authorization_code(state, account.appid, now)
        info_type = "updateauthorized" if was_authorized else "authorized"
        event = pusher.authorization_event_xml(
            state,
            info_type,
            account.appid,
            code.value,
            create_time=int(now),
            expired_time=int(now) + AUTHORIZATION_CODE_LIFETIME,
            pre_auth_code=request.pre_auth_code,
        )
    redirect = with_query(
        request.redirect_uri, {"auth_code": code.value, "expires_in": str(AUTHORIZATION_CODE_LIFETIME)}
    )
    result = pusher.push_to_callback(state, event) if push else None
    return Approval(redirect, code.value, info_type, event, result)


def refuse(state: SimState, request: AuthorizationRequest, account_appid: str) -> str:
    """The owner refuses: nothing changes, the pre-auth code stays usable; the browser goes back
    to redirect_uri without auth_code."""
    with state.lock:
        check_request(state, request)
        check_eligible(request, get_account(state, account_appid))
    return request.redirect_uri


def query_auth_code(
    state: SimState, appid: str, *, push: bool = False, code: str | None = None
) -> dict[str, Any]:
    """A fresh authorization code without the page, as the full-network test's automatic
    authorization does. An account that is not authorized becomes authorized (all default
    permission sets); an authorized one keeps its refresh token. The optional push is an
    ``authorized`` event without PreAuthCode, like the real capture."""
    with state.lock:
        account = get_account(state, appid)
        now = state.now()
        if not account.authorized:
            account.authorize(now, None)
        if code is not None and (not isinstance(code, str) or not code.startswith("queryauthcode@@@")):
            raise SimError("invalid_code", "code must start with queryauthcode@@@")
        issued = _new_authorization_code(state, appid, now, code)
        event = pusher.authorization_event_xml(
            state,
            "authorized",
            appid,
            issued.value,
            create_time=int(now),
            expired_time=int(now) + AUTHORIZATION_CODE_LIFETIME,
        )
    result = pusher.push_to_callback(state, event) if push else None
    return {
        "authorization_code": issued.value,
        "expires_in": AUTHORIZATION_CODE_LIFETIME,
        "event": event,
        "push": result,
    }


# --- WeChat APIs ----------------------------------------------------------------------------


def api_create_preauthcode(state: SimState, body: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
    refused = component_call_error(state, query, body.get("component_appid"))
    if refused:
        return refused
    code = new_pre_auth_code(state)
    return {"pre_auth_code": code.value, "expires_in": PRE_AUTH_CODE_LIFETIME}


def api_query_auth(state: SimState, body: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
    with state.lock:
        refused = component_call_error(state, query, body.get("component_appid"))
        if refused:
            return refused
        value = body.get("authorization_code")
        code = state.authorization_codes.get(value) if isinstance(value, str) else None
        if code is None or code.revoked:
            return error(61009)
        if code.used:
            return error(40163)
        now = state.now()
        if now >= code.expires_at:
            return error(61010)
        code.used = True
        account = state.accounts[code.appid]
        refresh = account.refresh_token_for_exchange(now)
        access = issue_access_token(state, account, now)
        code.access_token = access.value
        return {
            "authorization_info": {
                "authorizer_appid": account.appid,
                "authorizer_access_token": access.value,
                "expires_in": TOKEN_LIFETIME,
                "authorizer_refresh_token": refresh.value,
                "func_info": account.func_info_json(),
            }
        }


APIS = (
    ApiRoute("/cgi-bin/component/api_create_preauthcode", "POST", api_create_preauthcode),
    ApiRoute("/cgi-bin/component/api_query_auth", "POST", api_query_auth),
)
