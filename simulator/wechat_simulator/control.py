"""The ``/__sim`` control API: what tests and local runs use to drive and inspect the simulator.

Refusals answer 4xx with ``{"error": "<reason>", "message": "..."}`` (never WeChat's shape).
"""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, jsonify, request

from wechat_simulator import accounts, authorization, miniprogram
from wechat_simulator.protocol import SimError
from wechat_simulator.state import GRACE_SECONDS, Fault, SimState

if TYPE_CHECKING:
    from wechat_simulator.server import Simulator

_FAULT_FIELDS = {f.name for f in fields(Fault)}


def _json() -> dict[str, Any]:
    if not request.get_data():
        return {}
    spec = request.get_json(force=True, silent=True)
    if not isinstance(spec, dict):
        raise SimError("invalid_json", "the body must be a JSON object")
    return spec


def add_fault(state: SimState, spec: dict[str, Any]) -> dict[str, Any]:
    unknown = set(spec) - _FAULT_FIELDS
    if unknown:
        raise SimError("unknown_field", f"unknown fault fields: {', '.join(sorted(unknown))}")
    if not isinstance(spec.get("api"), str):
        raise SimError("missing_parameter", "api is required (the last path segment, or *)")
    fault = Fault(**spec)
    with state.lock:
        state.faults.append(fault)
    return fault.describe()


def register(app: Flask, sim: Simulator) -> None:  # noqa: PLR0915 - one route table
    state = sim.state

    @app.errorhandler(SimError)
    def refused(problem: SimError) -> tuple[Response, int]:
        return jsonify(problem.describe()), problem.status

    # --- platform, calls, faults, clock, pushes ------------------------------------------

    @app.get("/__sim/platform")
    def platform() -> Any:
        p = state.platform
        return jsonify(
            appid=p.appid, appsecret=p.appsecret, token=p.token, encoding_aes_key=p.encoding_aes_key
        )

    @app.get("/__sim/settings")
    def settings() -> Any:
        return jsonify(callback_url=state.callback_url, latency=state.latency)

    @app.post("/__sim/settings")
    def change_settings() -> Any:
        spec = _json()
        if "callback_url" in spec:
            if spec["callback_url"] is not None and not isinstance(spec["callback_url"], str):
                raise SimError("invalid_callback_url", "callback_url must be a string or null")
            state.callback_url = spec["callback_url"] or None
        if "latency" in spec:
            state.latency = float(spec["latency"])
        return settings()

    @app.get("/__sim/calls")
    def calls() -> Any:
        with state.lock:
            return jsonify(dict(state.calls))

    @app.delete("/__sim/calls")
    def reset_calls() -> Any:
        with state.lock:
            state.calls.clear()
            state.requests.clear()
        return jsonify(ok=True)

    @app.get("/__sim/requests")
    def requests_made() -> Any:
        api_name = request.args.get("api")
        with state.lock:
            rows = [r for r in state.requests if api_name in (None, r["api"])]
        return jsonify(rows)

    @app.post("/__sim/faults")
    def new_fault() -> Any:
        return jsonify(add_fault(state, _json()))

    @app.delete("/__sim/faults")
    def clear_faults() -> Any:
        with state.lock:
            state.faults.clear()
        return jsonify(ok=True)

    @app.post("/__sim/limits")
    def set_limit() -> Any:
        spec = _json()
        with state.lock:
            state.daily_limits[str(spec["api"])] = int(spec["daily_limit"])
        return jsonify(ok=True)

    @app.post("/__sim/tickets")
    def register_ticket() -> Any:
        """A ticket WeChat will accept, without pushing it; ``ticket`` chooses its value."""
        value = _json().get("ticket")
        if value is not None and (not isinstance(value, str) or not value.startswith("ticket@@@")):
            raise SimError("invalid_ticket", "ticket must start with ticket@@@")
        ticket = state.new_ticket(value)
        return jsonify(ticket=ticket), 201

    @app.post("/__sim/clock")
    def advance_clock() -> Any:
        return jsonify(now=sim.advance_clock(float(_json().get("advance", 0))))

    @app.post("/__sim/push/ticket")
    def push_ticket() -> Any:
        spec = _json()
        return jsonify(sim.push_ticket(spec.get("url"), spec.get("create_time")))

    @app.post("/__sim/push/xml")
    def push_xml() -> Any:
        spec = _json()
        return jsonify(sim.push_xml(spec["xml"], spec.get("url"), to_user_name=spec.get("to_user_name")))

    # --- accounts ------------------------------------------------------------------------

    @app.post("/__sim/accounts")
    def add_account() -> Any:
        spec = _json()
        if "kind" not in spec:
            raise SimError("missing_parameter", "kind is required (official_account or mini_program)")
        return jsonify(sim.add_account(**spec)), 201

    @app.get("/__sim/accounts")
    def list_accounts() -> Any:
        with state.lock:
            now = state.now()
            return jsonify([a.describe(now) for a in state.accounts.values()])

    @app.get("/__sim/accounts/<appid>")
    def account(appid: str) -> Any:
        return jsonify(sim.account(appid))

    @app.post("/__sim/accounts/<appid>/rotation")
    def rotation(appid: str) -> Any:
        spec = _json()
        accounts.set_rotation(
            state, appid, spec.get("enabled", True), spec.get("grace_seconds", GRACE_SECONDS)
        )
        return jsonify(sim.account(appid))

    @app.post("/__sim/accounts/<appid>/jscode_limit")
    def jscode_limit(appid: str) -> Any:
        accounts.set_jscode_limit(state, appid, _json().get("per_minute"))
        return jsonify(sim.account(appid))

    @app.post("/__sim/accounts/<appid>/revoke")
    def revoke(appid: str) -> Any:
        return jsonify(sim.revoke(appid, push=bool(_json().get("push", True))))

    # --- authorization -------------------------------------------------------------------

    @app.post("/__sim/pre_auth_code")
    def pre_auth_code() -> Any:
        return jsonify(
            pre_auth_code=sim.create_pre_auth_code(), expires_in=authorization.PRE_AUTH_CODE_LIFETIME
        )

    @app.post("/__sim/authorize")
    def authorize() -> Any:
        """The owner's decision without the page: the same checks, the same effects."""
        spec = _json()
        categories = spec.get("category_id_list") or ""
        if isinstance(categories, list):
            categories = "|".join(str(i) for i in categories)
        args = {
            "component_appid": str(spec.get("component_appid", state.platform.appid)),
            "pre_auth_code": str(spec.get("pre_auth_code") or ""),
            "redirect_uri": str(spec.get("redirect_uri") or ""),
            "auth_type": str(spec.get("auth_type") or "3"),
            "biz_appid": str(spec.get("biz_appid") or ""),
            "category_id_list": str(categories),
        }
        link = authorization.AuthorizationRequest.from_query(args)
        appid = spec.get("appid")
        if not isinstance(appid, str) or not appid:
            raise SimError("missing_parameter", "appid (the account that decides) is required")
        action = spec.get("action", "approve")
        if action == "approve":
            approval = authorization.approve(state, link, appid, push=bool(spec.get("push", True)))
            return jsonify(approval.describe())
        if action == "refuse":
            return jsonify(redirect=authorization.refuse(state, link, appid))
        raise SimError("invalid_action", "action must be approve or refuse")

    @app.post("/__sim/query_auth_code")
    def query_auth_code() -> Any:
        spec = _json()
        appid = spec.get("appid")
        if not isinstance(appid, str) or not appid:
            raise SimError("missing_parameter", "appid is required")
        return jsonify(
            authorization.query_auth_code(
                state, appid, push=bool(spec.get("push", False)), code=spec.get("code")
            )
        )

    # --- mini programs -------------------------------------------------------------------

    @app.post("/__sim/wxlogin")
    def wx_login() -> Any:
        spec = _json()
        appid = spec.get("appid")
        if not isinstance(appid, str) or not appid:
            raise SimError("missing_parameter", "appid is required")
        return jsonify(code=miniprogram.wx_login(state, appid, spec.get("user"), spec.get("code")))

    @app.get("/__sim/session_keys")
    def session_keys() -> Any:
        return jsonify(miniprogram.session_keys(state))

    @app.post("/__sim/userdata")
    def user_data() -> Any:
        spec = _json()
        unknown = set(spec) - {"kind", "session_key", "openid", "appid", "watermark_appid", "fields"}
        if unknown:
            raise SimError("unknown_field", f"unknown fields: {', '.join(sorted(unknown))}")
        kind = spec.pop("kind", None)
        if not isinstance(kind, str):
            raise SimError("missing_parameter", "kind is required (phone or userinfo)")
        return jsonify(miniprogram.user_data(state, kind, **spec))
