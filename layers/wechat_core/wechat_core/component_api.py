"""The third-party platform's WeChat APIs, one function each, with WeChat's request shapes.

Sources: the component API pages of the Open Platform docs, summarised in
shared/wechat-protocol.md §3 (api_component_token, api_create_preauthcode, api_query_auth,
api_authorizer_token, api_get_authorizer_info, api_get_authorizer_list, api_start_push_ticket).
"""

from __future__ import annotations

from typing import Any

from wechat_core.config import component_secret, settings
from wechat_core.wechat_api import TokenSource, client

COMPONENT = "/cgi-bin/component"


def api_component_token(component_verify_ticket: str) -> dict[str, Any]:
    return client().post(
        f"{COMPONENT}/api_component_token",
        {
            "component_appid": settings().component_appid,
            "component_appsecret": component_secret().appsecret,
            "component_verify_ticket": component_verify_ticket,
        },
    )


def api_start_push_ticket() -> dict[str, Any]:
    return client().post(
        f"{COMPONENT}/api_start_push_ticket",
        {"component_appid": settings().component_appid, "component_secret": component_secret().appsecret},
    )


def api_create_preauthcode(token: TokenSource) -> dict[str, Any]:
    return client().post(
        f"{COMPONENT}/api_create_preauthcode", {"component_appid": settings().component_appid}, token=token
    )


def api_query_auth(authorization_code: str, token: TokenSource) -> dict[str, Any]:
    return client().post(
        f"{COMPONENT}/api_query_auth",
        {"component_appid": settings().component_appid, "authorization_code": authorization_code},
        token=token,
    )


def api_authorizer_token(
    authorizer_appid: str, authorizer_refresh_token: str, token: TokenSource
) -> dict[str, Any]:
    return client().post(
        f"{COMPONENT}/api_authorizer_token",
        {
            "component_appid": settings().component_appid,
            "authorizer_appid": authorizer_appid,
            "authorizer_refresh_token": authorizer_refresh_token,
        },
        token=token,
    )


def api_get_authorizer_info(authorizer_appid: str, token: TokenSource) -> dict[str, Any]:
    return client().post(
        f"{COMPONENT}/api_get_authorizer_info",
        {"component_appid": settings().component_appid, "authorizer_appid": authorizer_appid},
        token=token,
    )


def api_get_authorizer_list(offset: int, count: int, token: TokenSource) -> dict[str, Any]:
    return client().post(
        f"{COMPONENT}/api_get_authorizer_list",
        {"component_appid": settings().component_appid, "offset": offset, "count": count},
        token=token,
    )
