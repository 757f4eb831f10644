"""WeChat APIs called for an authorized account with its authorizer access token.

- customer-service message: ``POST /cgi-bin/message/custom/send?access_token=AUTHORIZER_TOKEN``
  ``{"touser", "msgtype": "text", "text": {"content"}}`` -> ``{errcode: 0}``; 45015 when the fan
  has not interacted within 48 hours (shared/wechat-protocol.md §3).
- JS-SDK ticket: ``GET /cgi-bin/ticket/getticket?access_token=AUTHORIZER_TOKEN&type=jsapi`` ->
  ``{errcode: 0, ticket, expires_in: 7200}`` (doc developers.weixin.qq.com/doc/offiaccount/
  OA_Web_Apps/JS-SDK.html, appendix 1).
"""

from __future__ import annotations

from typing import Any

from wechat_core.wechat.client import TokenSource, WeChatClient


class AccountApi:
    def __init__(self, client: WeChatClient) -> None:
        self.client = client

    def send_text(self, touser: str, content: str, token: TokenSource) -> None:
        self.client.post(
            "/cgi-bin/message/custom/send",
            {"touser": touser, "msgtype": "text", "text": {"content": content}},
            token=token,
        )

    def get_jsapi_ticket(self, token: TokenSource) -> dict[str, Any]:
        return self.client.get("/cgi-bin/ticket/getticket", {"type": "jsapi"}, token=token)
