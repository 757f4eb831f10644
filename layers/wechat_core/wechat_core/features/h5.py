"""H5 pages inside WeChat for authorized Official Accounts: who the user is (web OAuth on the
account's behalf, 代公众号发起网页授权) and ``wx.config`` signatures for the JS-SDK.

The OAuth sequence (README "H5 pages"): the page sends the browser to ``authorize`` -> WeChat's
consent page -> ``callback`` with WeChat's code and our state -> the page, with a one-time
``ticket`` and the page's own ``state`` -> the page's backend redeems the ticket (IAM) for the
identity, once. WeChat's OAuth access and refresh tokens are used for ``sns/userinfo`` within
the callback and then dropped: they are never stored, logged, put in a URL or answered.

Our state is random (128 bits, hex: WeChat allows only letters and digits), used once, for the
account it was issued for, and lives as long as WeChat's code (5 minutes). Every check of the
state happens before any call to WeChat. Return targets and JS-SDK pages must be on the
allow-list (``allow_list``); the page's URL is never taken from anything but our state item.
"""

from __future__ import annotations

import re
import secrets
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from wechat_core import clock, runtime
from wechat_core.allow_list import NotAllowed
from wechat_core.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    ServiceError,
    WeChatCodeInvalid,
)
from wechat_core.features.tokens import ComponentToken, JsapiTicket, require_active_official_account
from wechat_core.protocol import jssdk
from wechat_core.protocol.ids import require_appid

logger = Logger(child=True)
metrics = Metrics()

SCOPES = ("snsapi_base", "snsapi_userinfo")
STATE_TTL_SECONDS = 5 * 60  # WeChat's OAuth code lives 5 minutes
TICKET_TTL_SECONDS = 5 * 60
MAX_CLIENT_STATE_CHARS = 512
_STATE = re.compile(r"[0-9a-f]{32}")
_CODE = re.compile(r"[0-9A-Za-z_\-]{8,128}")
_TICKET = re.compile(r"[0-9A-Za-z_\-]{43}")
_PRINTABLE = re.compile(r"[\x20-\x7e]*")
# Parameters the callback sets on the page's URL; the page's own values of them are replaced.
_RETURN_PARAMETERS = ("ticket", "state", "error")
USER_FIELDS = ("nickname", "sex", "province", "city", "country", "headimgurl", "privilege")


class StateRefused(BadRequest):
    reason = "unknown or expired state"


class StateUsed(Conflict):
    reason = "state already used"


class StateOfAnotherAccount(Forbidden):
    reason = "state was issued for another account"


class TicketUnknown(NotFound):
    reason = "unknown or expired ticket"


class TicketRedeemed(Conflict):
    reason = "ticket already redeemed"


def _allowed(name: str, url: Any) -> str:
    if not isinstance(url, str):
        raise BadRequest(f"missing {name}")
    try:
        return runtime.allow_list().check(url)
    except NotAllowed as error:
        raise BadRequest(f"{name}: {error}") from None


def page_with(page: str, parameters: dict[str, str]) -> str:
    """``page`` with ``parameters`` in its query (before any ``#fragment``, which single-page apps
    route by), replacing the page's own values of the names we set."""
    parts = urlsplit(page)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in _RETURN_PARAMETERS]
    return urlunsplit(parts._replace(query=urlencode([*query, *parameters.items()])))


# --- web OAuth -----------------------------------------------------------------------------------


def authorize_url(appid: str, scope: Any, redirect_uri: Any, client_state: Any, callback_url: str) -> str:
    """WeChat's consent URL for this account, with a new state of ours remembering the page."""
    require_appid(appid)
    if scope not in SCOPES:
        raise BadRequest("scope must be snsapi_base or snsapi_userinfo")
    page = _allowed("redirect_uri", redirect_uri)
    if client_state is None:
        client_state = ""
    if (
        not isinstance(client_state, str)
        or len(client_state) > MAX_CLIENT_STATE_CHARS
        or not _PRINTABLE.fullmatch(client_state)
    ):
        raise BadRequest(f"state must be printable ASCII of at most {MAX_CLIENT_STATE_CHARS} characters")
    store = runtime.store()
    require_active_official_account(store, appid)
    state = secrets.token_hex(16)
    now = clock.now()
    store.transient.put_oauth_state(
        state,
        {"appid": appid, "scope": scope, "page": page, "client_state": client_state, "created_at": now},
        STATE_TTL_SECONDS,
        now,
    )
    metrics.add_metric("OAuthStarted", MetricUnit.Count, 1)
    # The parameters in the order WeChat's documentation gives them; the fragment is WeChat's.
    query = urlencode(
        {
            "appid": appid,
            "redirect_uri": callback_url,
            "response_type": "code",
            "scope": scope,
            "state": state,
            "component_appid": runtime.settings().component_appid,
        }
    )
    return f"{runtime.settings().wechat_open_base}/connect/oauth2/authorize?{query}#wechat_redirect"


def callback(appid: str, code: str | None, state: str | None, wechat_appid: str | None) -> str:
    """Where the browser goes back to: the page with a one-time ticket (or an ``error``) and the
    page's state. Refused (4xx) without any WeChat call unless the state is ours, unused and this
    account's."""
    require_appid(appid)
    if wechat_appid is not None and wechat_appid != appid:
        raise BadRequest("appid does not match the account in the path")
    if not isinstance(state, str) or not _STATE.fullmatch(state):
        metrics.add_metric("OAuthStateRefused", MetricUnit.Count, 1)
        raise StateRefused
    claim = runtime.store().transient.claim_oauth_state(state, appid, clock.now())
    if claim.state is None:
        metrics.add_metric("OAuthStateRefused", MetricUnit.Count, 1)
        logger.warning("web OAuth state refused", extra={"appid": appid, "refusal": claim.refusal})
        raise {"used": StateUsed, "other_account": StateOfAnotherAccount}.get(
            claim.refusal or "", StateRefused
        )
    page, client_state = str(claim.state["page"]), str(claim.state.get("client_state") or "")
    scope = str(claim.state["scope"])
    back = {"state": client_state}
    if not code:
        metrics.add_metric("OAuthRefusedByUser", MetricUnit.Count, 1)
        return page_with(page, {"error": "access_denied", **back})
    if not _CODE.fullmatch(code):
        return page_with(page, {"error": "invalid_request", **back})
    try:
        identity = _identity(appid, code, scope)
    except WeChatCodeInvalid as error:
        metrics.add_metric("OAuthCodeRefused", MetricUnit.Count, 1)
        logger.warning("WeChat refused the OAuth code", extra={"appid": appid, "errcode": error.errcode})
        return page_with(page, {"error": "invalid_grant", **back})
    except ServiceError as error:
        metrics.add_metric("OAuthFailed", MetricUnit.Count, 1)
        logger.warning("web OAuth failed", extra={"appid": appid, "error": type(error).__name__})
        return page_with(page, {"error": "server_error", **back})
    ticket = secrets.token_urlsafe(32)
    now = clock.now()
    try:
        runtime.store().transient.put_identity(
            ticket, {**identity, "authorized_at": int(now)}, TICKET_TTL_SECONDS, now
        )
    except Exception as error:  # the table refused: the code is used, the page must start again
        metrics.add_metric("OAuthFailed", MetricUnit.Count, 1)
        logger.error("web OAuth identity not stored", extra={"appid": appid, "error": type(error).__name__})
        return page_with(page, {"error": "server_error", **back})
    metrics.add_metric(f"OAuthCompleted.{scope}", MetricUnit.Count, 1)
    return page_with(page, {"ticket": ticket, **back})


def _identity(appid: str, code: str, scope: str) -> dict[str, Any]:
    sns = runtime.sns_api()
    data = sns.oauth_access_token(appid, code, ComponentToken())
    openid = data.get("openid")
    if not isinstance(openid, str) or not openid:
        raise ServiceError("WeChat answered the OAuth code without an openid")
    granted = str(data.get("scope") or scope)
    identity: dict[str, Any] = {"appid": appid, "openid": openid, "scope": granted}
    unionid = data.get("unionid")
    if "snsapi_userinfo" in granted.split(","):
        info = sns.userinfo(str(data.get("access_token") or ""), openid)
        identity["user"] = {k: info[k] for k in USER_FIELDS if k in info}
        unionid = unionid or info.get("unionid")
    if unionid:
        identity["unionid"] = str(unionid)
    return identity


def redeem(body: dict[str, Any]) -> dict[str, Any]:
    """The identity a ticket holds (``{"ticket"}``), once."""
    unknown = sorted(set(body) - {"ticket"})
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]}")
    ticket = body.get("ticket")
    if not isinstance(ticket, str) or not _TICKET.fullmatch(ticket):
        raise BadRequest("ticket must be the value the page received")
    identity, used = runtime.store().transient.redeem_identity(ticket, clock.now())
    if identity is None:
        metrics.add_metric("OAuthTicketRefused", MetricUnit.Count, 1)
        raise TicketRedeemed if used else TicketUnknown
    metrics.add_metric("OAuthTicketRedeemed", MetricUnit.Count, 1)
    return identity


# --- JS-SDK --------------------------------------------------------------------------------------


def jssdk_config(appid: str, url: Any) -> dict[str, Any]:
    """What ``wx.config`` needs for this page: ``{appId, timestamp, nonceStr, signature}``."""
    require_appid(appid)
    page = _allowed("url", url)
    ticket = JsapiTicket(appid).get()
    timestamp = int(clock.now())
    nonce = secrets.token_urlsafe(12)
    return {
        "appId": appid,
        "timestamp": timestamp,
        "nonceStr": nonce,
        "signature": jssdk.signature(ticket, nonce, timestamp, page),
    }
