"""The token service and admin views: business systems take tokens here instead of refreshing them."""

from __future__ import annotations

from typing import Any

from wechat_core import clock, runtime
from wechat_core.errors import BadRequest
from wechat_core.features import onboarding
from wechat_core.features.tokens import AuthorizerToken, ComponentToken, JsapiTicket, LeasedToken
from wechat_core.protocol.ids import is_appid, require_appid

PUBLIC_FIELDS = (
    "authorizer_appid",
    "status",
    "authorized_at",
    "revoked_at",
    "needs_reauth_at",
    "expires_at",
    "refreshed_at",
    "func_info",
    "info",
    "last_error",
)


def authorizer_access_token(authorizer_appid: str) -> dict[str, Any]:
    require_appid(authorizer_appid)
    value, expiry = _current(AuthorizerToken(authorizer_appid))
    return {"authorizer_appid": authorizer_appid, "authorizer_access_token": value, **expiry}


def jsapi_ticket(authorizer_appid: str) -> dict[str, Any]:
    """An Official Account's JS-SDK ticket, for business systems that sign ``wx.config`` themselves."""
    require_appid(authorizer_appid)
    value, expiry = _current(JsapiTicket(authorizer_appid))
    return {"authorizer_appid": authorizer_appid, "jsapi_ticket": value, **expiry}


def component_access_token() -> dict[str, Any]:
    value, expiry = _current(ComponentToken())
    return {"component_access_token": value, **expiry}


def _current(token: LeasedToken) -> tuple[str, dict[str, int]]:
    """A valid token (refreshed through the lease when due) and its expiry, from one read."""
    value, expires = token.current()
    expires_at = int(expires)
    return value, {"expires_at": expires_at, "expires_in": max(0, expires_at - int(clock.now()))}


def list_authorizers(limit: int = 100, after: str | None = None) -> dict[str, Any]:
    if not 1 <= limit <= 500:
        raise BadRequest("limit must be between 1 and 500")
    if after is not None and not is_appid(after):
        raise BadRequest("next must be an appid from a previous page")
    items, last = runtime.store().authorizers.page(limit, after)
    rows = [{k: item[k] for k in PUBLIC_FIELDS if k in item} for item in items]
    return {"authorizers": rows, "next": last}


def signed_authorization_link(base_url: str, body: dict[str, Any]) -> dict[str, Any]:
    """A signed link to the authorization page (for ``AuthorizeAccess=signed``), from a JSON body
    ``{"auth_type"?, "biz_appid"?, "category_list"?, "mobile"?, "expires_in"?}``."""
    unknown = sorted(set(body) - {"auth_type", "biz_appid", "category_list", "mobile", "expires_in"})
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]}")
    text: dict[str, str | None] = {}
    for name in ("auth_type", "biz_appid", "category_list"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and name == "auth_type":
            value = str(value)
        if value is not None and not isinstance(value, str):
            raise BadRequest(f"{name} must be a string")
        text[name] = value
    mobile = body.get("mobile", False)
    if not isinstance(mobile, bool):
        raise BadRequest("mobile must be true or false")
    expires_in = body.get("expires_in", onboarding.SIGNED_LINK_DEFAULT_SECONDS)
    if isinstance(expires_in, bool) or not isinstance(expires_in, int):
        raise BadRequest("expires_in must be a whole number of seconds")
    return onboarding.sign_link(
        base_url,
        auth_type=text["auth_type"],
        biz_appid=text["biz_appid"],
        category_list=text["category_list"],
        mobile=mobile,
        expires_in=expires_in,
    )


def recover() -> dict[str, int]:
    return onboarding.recover_from_authorizer_list()
