"""Web OAuth on behalf of an authorized Official Account (代公众号发起网页授权), doc
https://developers.weixin.qq.com/doc/oplatform/Third-party_Platforms/2.0/api/Before_Develop/Official_Accounts/official_account_website_authorization.html
(the Official Account's own flow, whose rules it shares:
https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html).

1. The fan's browser opens ``https://open.weixin.qq.com/connect/oauth2/authorize?appid=APPID&
   redirect_uri=REDIRECT_URI&response_type=code&scope=SCOPE&state=STATE&component_appid=
   COMPONENT_APPID#wechat_redirect``; the page is served by ``pages.py``, the rules are here.
   WeChat matches the link strictly: these parameters in this order (the Official Account doc:
   with 参数顺序不对 the page cannot be opened; state may be left out, other parameters are
   ignored), scope
   ``snsapi_base`` (silent: no screen, openid only) or ``snsapi_userinfo`` (the user consents),
   state at most 128 bytes, the account an authorizer of this component, an Official Account,
   authorized and in normal status, redirect_uri an absolute http(s) URL on the platform's
   网页授权域名 (``harness.set_oauth_domains``; none set: any host). ``#wechat_redirect`` never
   reaches a server: ``follow_authorize_url`` (``Simulator.oauth_consent``) checks it.
2. The user approves: 302 to ``REDIRECT_URI?code=CODE&state=STATE&appid=APPID`` (the
   redirect_uri's own query kept). The code is valid 5 minutes, usable once. The user refuses
   (snsapi_userinfo only: snsapi_base shows nothing to refuse): 302 to
   ``REDIRECT_URI?state=STATE&appid=APPID``, no code.
3. ``GET /sns/oauth2/component/access_token?appid&code&grant_type=authorization_code&
   component_appid&component_access_token`` answers ``{access_token, expires_in: 7200,
   refresh_token, openid, scope, unionid?}``; unionid when the account is ``unionid_bound`` and
   the scope ``snsapi_userinfo``. Component-token checks first (``component_call_error``), then
   40002 grant_type, 41002 no appid, 40013 unknown appid or a Mini Program, 61003 the account
   has not (or no longer) authorized the component, 41008 no code, 40029 unknown, expired,
   another account's or another component's code (or one issued before a revocation), 40163
   used.
4. ``GET /sns/userinfo?access_token=OAUTH_ACCESS_TOKEN&openid=OPENID&lang=zh_CN`` answers
   ``{openid, nickname, sex, province, city, country, headimgurl, privilege: [], unionid?}``;
   41001 no token, 40001 unknown token, 42001 expired, 41009 no openid, 40003 not the token's
   openid, 48001 a snsapi_base token.

The user is a simulated WeChat user (``users.py``): the openid is theirs in that account; the
nickname, sex and avatar are the ones Mini Program user data shows. Every access and refresh
token issued is recorded (``oauth_tokens``), so tests can check none leaks. Revoking the
account's authorization kills its unexchanged codes; the user tokens already issued are not
touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests

from wechat_simulator import users
from wechat_simulator.authorization import with_query
from wechat_simulator.component import code_exchange_account
from wechat_simulator.protocol import ApiRoute, SimError, error
from wechat_simulator.records import (
    OAUTH_CODE_LIFETIME,
    OAUTH_REFRESH_TOKEN_LIFETIME,
    TOKEN_LIFETIME,
    Account,
    OAuthCode,
    OAuthGrant,
    OAuthRequest,
    random_text,
)
from wechat_simulator.state import SimState

AUTHORIZE_PATH = "/connect/oauth2/authorize"
SCOPES = ("snsapi_base", "snsapi_userinfo")
# The link's parameters in the only order WeChat accepts (state may be left out).
LINK_PARAMETERS = ("appid", "redirect_uri", "response_type", "scope", "state", "component_appid")
REQUIRED_PARAMETERS = ("appid", "redirect_uri", "response_type", "scope", "component_appid")
MAX_STATE_BYTES = 128
ACTIONS = ("approve", "refuse")
# province, city, country by sns/userinfo's lang (zh_CN when absent or unknown).
PLACES = {
    "zh_CN": ("广东", "广州", "中国"),
    "zh_TW": ("廣東", "廣州", "中國"),
    "en": ("Guangdong", "Guangzhou", "China"),
}


# --- the link and the user's decision (the page, Simulator.oauth_consent) -------------------


def parse_request(args: Mapping[str, str]) -> OAuthRequest:
    """The link's query as the page gets it (a ``Mapping`` iterating in the query's order);
    refusals raise SimError (the page's error reasons)."""
    for name in REQUIRED_PARAMETERS:
        if not args.get(name):
            raise SimError("missing_parameter", f"missing parameter {name}")
    given = [name for name in args if name in LINK_PARAMETERS]
    if given != sorted(given, key=LINK_PARAMETERS.index):
        raise SimError(
            "parameter_order",
            "WeChat matches the link strictly: appid, redirect_uri, response_type, scope, state, "
            "component_appid, in this order",
        )
    if args["response_type"] != "code":
        raise SimError("invalid_response_type", "response_type must be code")
    if args["scope"] not in SCOPES:
        raise SimError("invalid_scope", "scope must be snsapi_base or snsapi_userinfo")
    state_value = args.get("state") or ""
    if len(state_value.encode()) > MAX_STATE_BYTES:
        raise SimError("invalid_state", f"state is longer than {MAX_STATE_BYTES} bytes")
    return OAuthRequest(
        appid=args["appid"],
        redirect_uri=args["redirect_uri"],
        response_type=args["response_type"],
        scope=args["scope"],
        state=state_value,
        component_appid=args["component_appid"],
    )


def _domain_allowed(state: SimState, redirect_uri: str) -> bool:
    """The redirect_uri's host is one of the platform's web-authorization domains (any when none
    is set). Raises SimError for a URL that is no absolute http(s) URL."""
    parts = urlsplit(redirect_uri)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
        raise SimError("invalid_redirect_uri", "redirect_uri must be an absolute http(s) URL")
    if not state.oauth_domains:
        return True
    host = parts.hostname.lower()
    return any(d == (f"{host}:{port}" if ":" in d else host) for d in state.oauth_domains)


def check_request(state: SimState, request: OAuthRequest) -> Account:
    """The account the link names, once WeChat would show the page for it (call under the lock)."""
    if request.component_appid != state.platform.appid:
        raise SimError("invalid_component", "component_appid is not this platform")
    account = state.accounts.get(request.appid)
    if account is None:
        raise SimError("unknown_account", f"no simulated account {request.appid}", 404)
    if account.is_mini_program:
        raise SimError("not_an_official_account", f"account {request.appid} is a mini program")
    if not account.authorized:
        raise SimError("account_not_authorized", f"account {request.appid} has not authorized this component")
    if account.account_status != 1:
        raise SimError("account_not_active", f"account {request.appid} has status {account.account_status}")
    if not _domain_allowed(state, request.redirect_uri):
        raise SimError(
            "redirect_uri_domain_not_allowed",
            "redirect_uri's host is not one of the platform's web-authorization domains",
        )
    return account


def consent(state: SimState, request: OAuthRequest, user: Any, action: Any) -> str:
    """``user`` (a simulated user's name, None: the default one) approves or refuses the link;
    return where WeChat redirects the browser."""
    name = users.user_name(user)
    with state.lock:
        check_request(state, request)
        if action == "refuse":
            if request.scope == "snsapi_base":
                raise SimError("no_consent_screen", "snsapi_base shows the user nothing to refuse")
            return with_query(request.redirect_uri, {"state": request.state, "appid": request.appid})
        if action != "approve":
            raise SimError("invalid_sim_action", "sim_action must be approve or refuse")
        code = OAuthCode(
            value=random_text(32),
            appid=request.appid,
            user=users.get_user(state, name).name,
            scope=request.scope,
            component_appid=request.component_appid,
            expires_at=state.now() + OAUTH_CODE_LIFETIME,
        )
        state.oauth_codes[code.value] = code
    params = {"code": code.value, "state": request.state, "appid": request.appid}
    return with_query(request.redirect_uri, params)


def follow_authorize_url(base_url: str, authorize_url: str, user: str | None, action: str) -> str:
    """Play the fan's browser on the simulator at ``base_url``: open ``authorize_url`` (the full
    link a service produced, whatever its host) with ``user``'s ``action``; return the Location
    WeChat redirects to. An error page raises SimError with its ``X-Sim-Error`` reason."""
    parts = urlsplit(authorize_url)
    if parts.fragment != "wechat_redirect":
        raise SimError("missing_wechat_redirect", "the link must end with #wechat_redirect")
    if parts.path != AUTHORIZE_PATH:
        raise SimError("invalid_authorize_url", f"the link's path must be {AUTHORIZE_PATH}")
    extra = urlencode({"sim_action": action} | ({"sim_user": user} if user is not None else {}))
    query = f"{parts.query}&{extra}" if parts.query else extra
    answer = requests.get(f"{base_url}{AUTHORIZE_PATH}?{query}", allow_redirects=False, timeout=10)
    if answer.status_code == 302:
        return answer.headers["Location"]
    reason = answer.headers.get("X-Sim-Error")
    if reason:
        status = answer.status_code
        raise SimError(reason, f"the authorize page refused ({status}): {reason}", status)
    raise SimError("unexpected_answer", f"the authorize page answered HTTP {answer.status_code}", 502)


def oauth_tokens(state: SimState) -> list[str]:
    """Every user access token and refresh token issued, in order."""
    with state.lock:
        return [value for g in state.oauth_grants for value in (g.access_token, g.refresh_token)]


# --- WeChat APIs ----------------------------------------------------------------------------


def api_oauth_access_token(state: SimState, body: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
    with state.lock:
        account, refused = code_exchange_account(state, query, mini_program=False)
        if account is None:
            assert refused is not None
            return refused
        appid = account.appid
        if not query.get("code"):
            return error(41008)
        now = state.now()
        code = state.oauth_codes.get(query["code"])
        if (
            code is None
            or code.revoked
            or code.appid != appid
            or code.component_appid != query.get("component_appid")
            or now >= code.expires_at
        ):
            return error(40029)
        if code.used:
            return error(40163)
        code.used = True
        user = users.get_user(state, code.user)
        grant = OAuthGrant(
            access_token="sim_oat_" + random_text(64),
            refresh_token="sim_ort_" + random_text(64),
            appid=appid,
            user=user.name,
            openid=users.openid(user, appid),
            scope=code.scope,
            issued_at=now,
            expires_at=now + TOKEN_LIFETIME,
            refresh_expires_at=now + OAUTH_REFRESH_TOKEN_LIFETIME,
        )
        state.oauth_grants.append(grant)
        answer: dict[str, Any] = {
            "access_token": grant.access_token,
            "expires_in": TOKEN_LIFETIME,
            "refresh_token": grant.refresh_token,
            "openid": grant.openid,
            "scope": grant.scope,
        }
        unionid = users.unionid(user, account)
        if unionid and grant.scope == "snsapi_userinfo":
            answer["unionid"] = unionid
        return answer


def api_userinfo(state: SimState, body: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
    with state.lock:
        token = query.get("access_token")
        if not token:
            return error(41001)
        grant = next((g for g in state.oauth_grants if g.access_token == token), None)
        if grant is None:
            return error(40001)
        if state.now() >= grant.expires_at:
            return error(42001)
        if not query.get("openid"):
            return error(41009)
        if query["openid"] != grant.openid:
            return error(40003)
        if grant.scope != "snsapi_userinfo":
            return error(48001)
        user = users.get_user(state, grant.user)
        province, city, country = PLACES.get(query.get("lang") or "zh_CN", PLACES["zh_CN"])
        answer: dict[str, Any] = {
            "openid": grant.openid,
            "nickname": user.nick_name,
            "sex": user.gender,
            "province": province,
            "city": city,
            "country": country,
            "headimgurl": user.avatar_url,
            "privilege": [],
        }
        unionid = users.unionid(user, state.accounts[grant.appid])
        if unionid:
            answer["unionid"] = unionid
        return answer


# Counted (and faulted) as ``access_token`` and ``userinfo`` (``protocol.api_name``).
APIS = (
    ApiRoute("/sns/oauth2/component/access_token", "GET", api_oauth_access_token),
    ApiRoute("/sns/userinfo", "GET", api_userinfo),
)
