"""Mini Program code management (代码管理) and the template library (代码模板库).

With the component token (doc developers.weixin.qq.com/doc/oplatform/Third-party_Platforms/2.0/api/
ThirdParty/code_template/gettemplatedraftlist.html and gettemplatelist, addtotemplate,
deletetemplate): ``GET /wxa/gettemplatedraftlist``, ``GET /wxa/gettemplatelist``,
``POST /wxa/addtotemplate {draft_id, template_type}``, ``POST /wxa/deletetemplate {template_id}``.

With an authorizer token (…/2.0/api/code/commit.html, submit_audit, get_latest_auditstatus.html,
release.html; shared/wechat-protocol.md §3): ``POST /wxa/commit {template_id, ext_json (a JSON
string), user_version (≤ 64), user_desc}``, ``POST /wxa/submit_audit {...}`` -> ``{auditid}``,
``GET /wxa/get_latest_auditstatus`` -> ``{auditid, status (0 approved, 1 rejected, 2 auditing,
3 withdrawn, 4 delayed), reason, ScreenShot, user_version}``, ``POST /wxa/release {}`` (the body
must be ``{}``), ``POST /wxa/modify_domain {action: "set", ...}`` and
``POST /cgi-bin/component/setprivacysetting {...}`` (the settings an audit needs first).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from wechat_core.wechat.client import TokenSource, WeChatClient


class WxaApi:
    def __init__(self, client: WeChatClient) -> None:
        self.client = client

    # --- template library (component token) ---------------------------------------------------

    def template_drafts(self, token: TokenSource) -> list[dict[str, Any]]:
        return list(self.client.get("/wxa/gettemplatedraftlist", token=token).get("draft_list") or [])

    def templates(self, token: TokenSource, template_type: int | None = None) -> list[dict[str, Any]]:
        params = {} if template_type is None else {"template_type": str(template_type)}
        return list(self.client.get("/wxa/gettemplatelist", params, token=token).get("template_list") or [])

    def add_to_template(self, draft_id: int, template_type: int, token: TokenSource) -> None:
        self.client.post(
            "/wxa/addtotemplate", {"draft_id": draft_id, "template_type": template_type}, token=token
        )

    def delete_template(self, template_id: int, token: TokenSource) -> None:
        self.client.post("/wxa/deletetemplate", {"template_id": template_id}, token=token)

    # --- one Mini Program's code (authorizer token) ---------------------------------------------

    def commit(
        self,
        template_id: int,
        ext_json: Mapping[str, Any],
        user_version: str,
        user_desc: str,
        token: TokenSource,
    ) -> None:
        body = {
            "template_id": template_id,
            "ext_json": json.dumps(ext_json, ensure_ascii=False, separators=(",", ":")),
            "user_version": user_version,
            "user_desc": user_desc,
        }
        self.client.post("/wxa/commit", body, token=token)

    def submit_audit(self, fields: Mapping[str, Any], token: TokenSource) -> int:
        answer = self.client.post("/wxa/submit_audit", dict(fields), token=token)
        return int(answer["auditid"])

    def latest_audit_status(self, token: TokenSource) -> dict[str, Any]:
        return self.client.get("/wxa/get_latest_auditstatus", token=token)

    def release(self, token: TokenSource) -> None:
        self.client.post("/wxa/release", {}, token=token)

    def set_domains(self, domains: Mapping[str, Any], token: TokenSource) -> None:
        self.client.post("/wxa/modify_domain", {"action": "set", **domains}, token=token)

    def set_privacy(self, settings: Mapping[str, Any], token: TokenSource) -> None:
        self.client.post("/cgi-bin/component/setprivacysetting", dict(settings), token=token)
