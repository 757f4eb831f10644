"""The third-party platform's WeChat APIs, one method each, with WeChat's request shapes.

Sources: the component API pages of the Open Platform docs, summarised in
shared/wechat-protocol.md §3 (api_component_token, api_create_preauthcode, api_query_auth,
api_authorizer_token, api_get_authorizer_info, api_get_authorizer_list, api_start_push_ticket).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wechat_core.wechat.client import TokenSource, WeChatClient

COMPONENT = "/cgi-bin/component"


class ComponentApi:
    def __init__(self, client: WeChatClient, component_appid: str, appsecret: Callable[[], str]) -> None:
        self.client = client
        self.component_appid = component_appid
        self._appsecret = appsecret  # read when needed: the secret may rotate

    def api_component_token(self, component_verify_ticket: str) -> dict[str, Any]:
        return self.client.post(
            f"{COMPONENT}/api_component_token",
            {
                "component_appid": self.component_appid,
                "component_appsecret": self._appsecret(),
                "component_verify_ticket": component_verify_ticket,
            },
        )

    def api_start_push_ticket(self) -> dict[str, Any]:
        return self.client.post(
            f"{COMPONENT}/api_start_push_ticket",
            {"component_appid": self.component_appid, "component_secret": self._appsecret()},
        )

    def api_create_preauthcode(self, token: TokenSource) -> dict[str, Any]:
        return self.client.post(
            f"{COMPONENT}/api_create_preauthcode", {"component_appid": self.component_appid}, token=token
        )

    def api_query_auth(self, authorization_code: str, token: TokenSource) -> dict[str, Any]:
        return self.client.post(
            f"{COMPONENT}/api_query_auth",
            {"component_appid": self.component_appid, "authorization_code": authorization_code},
            token=token,
        )

    def api_authorizer_token(
        self, authorizer_appid: str, authorizer_refresh_token: str, token: TokenSource
    ) -> dict[str, Any]:
        return self.client.post(
            f"{COMPONENT}/api_authorizer_token",
            {
                "component_appid": self.component_appid,
                "authorizer_appid": authorizer_appid,
                "authorizer_refresh_token": authorizer_refresh_token,
            },
            token=token,
        )

    def api_get_authorizer_info(self, authorizer_appid: str, token: TokenSource) -> dict[str, Any]:
        return self.client.post(
            f"{COMPONENT}/api_get_authorizer_info",
            {"component_appid": self.component_appid, "authorizer_appid": authorizer_appid},
            token=token,
        )

    def api_get_authorizer_list(self, offset: int, count: int, token: TokenSource) -> dict[str, Any]:
        return self.client.post(
            f"{COMPONENT}/api_get_authorizer_list",
            {"component_appid": self.component_appid, "offset": offset, "count": count},
            token=token,
        )
