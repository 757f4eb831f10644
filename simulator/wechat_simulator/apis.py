"""WeChat API routes the simulator serves, with WeChat's request and response shapes."""

from __future__ import annotations

from typing import Any

from wechat_simulator.server import api, error
from wechat_simulator.state import TOKEN_LIFETIME, SimState


@api("/cgi-bin/component/api_component_token")
def api_component_token(state: SimState, body: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
    p = state.platform
    if not body.get("component_appsecret"):
        return error(41004)
    if body.get("component_appid") != p.appid:
        return error(61011)
    if body.get("component_appsecret") != p.appsecret:
        return error(40125)
    status = state.ticket_status(str(body.get("component_verify_ticket", "")))
    if status == "unknown":
        return error(61006)
    if status == "expired":
        return error(61005)
    token = state.issue_component_token()
    return {"component_access_token": token.value, "expires_in": TOKEN_LIFETIME}


@api("/cgi-bin/component/api_start_push_ticket")
def api_start_push_ticket(state: SimState, body: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
    p = state.platform
    if body.get("component_appid") != p.appid:
        return error(61011)
    if body.get("component_secret") != p.appsecret:
        return error(40125)
    state.extra["push_requested"] = state.extra.get("push_requested", 0) + 1
    return {"errcode": 0, "errmsg": "ok"}
