"""WeChat's ``sns`` APIs called on behalf of authorized accounts with the component token.

- Mini Program login: ``GET /sns/component/jscode2session?appid&js_code&grant_type=authorization_code
  &component_appid&component_access_token`` -> ``{openid, session_key, unionid?}``
  (doc …/2.0/api/others/WeChat_login.html; shared/wechat-protocol.md §3).
- Web OAuth on behalf of an Official Account (代公众号发起网页授权, doc
  developers.weixin.qq.com/doc/oplatform/Third-party_Platforms/2.0/api/Before_Develop/Official_Accounts/official_account_website_authorization.html):
  ``GET /sns/oauth2/component/access_token?appid&code&grant_type=authorization_code&component_appid
  &component_access_token`` -> ``{access_token, expires_in, refresh_token, openid, scope, unionid?}``;
  ``GET /sns/userinfo?access_token=<the OAuth token>&openid&lang=zh_CN`` -> ``{openid, nickname, sex,
  province, city, country, headimgurl, privilege, unionid?}``. The OAuth tokens go to WeChat in
  the query string (its protocol) and nowhere else: the client logs paths, never URLs.
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

    def oauth_access_token(self, appid: str, code: str, token: TokenSource) -> dict[str, Any]:
        return self.client.get(
            "/sns/oauth2/component/access_token",
            {
                "appid": appid,
                "code": code,
                "grant_type": "authorization_code",
                "component_appid": self.component_appid,
            },
            token=token,
        )

    def userinfo(self, oauth_access_token: str, openid: str) -> dict[str, Any]:
        return self.client.get(
            "/sns/userinfo", {"access_token": oauth_access_token, "openid": openid, "lang": "zh_CN"}
        )
