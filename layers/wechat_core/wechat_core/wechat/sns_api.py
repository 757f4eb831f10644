"""WeChat's ``sns`` APIs called on behalf of authorized accounts with the component token.

- Mini Program login: ``GET /sns/component/jscode2session?appid&js_code&grant_type=authorization_code
  &component_appid&component_access_token`` -> ``{openid, session_key, unionid?}``
  (doc …/2.0/api/others/WeChat_login.html; shared/wechat-protocol.md §3).
"""

from __future__ import annotations

from typing import Any

from wechat_core.wechat.client import TokenSource, WeChatClient


class SnsApi:
    def __init__(self, client: WeChatClient, component_appid: str) -> None:
        self.client = client
        self.component_appid = component_appid

    def jscode2session(self, appid: str, js_code: str, token: TokenSource) -> dict[str, Any]:
        return self.client.get(
            "/sns/component/jscode2session",
            {
                "appid": appid,
                "js_code": js_code,
                "grant_type": "authorization_code",
                "component_appid": self.component_appid,
            },
            token=token,
        )
