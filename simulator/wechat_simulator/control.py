"""The ``/__sim`` control API: what tests and local runs use to drive and inspect the simulator.

Each route reads its JSON body and calls the feature function the ``Simulator`` method of the
same purpose calls. Refusals answer 4xx with ``{"error": "<reason>", "message": "..."}`` (never
WeChat's shape).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify, request

from wechat_simulator import (
    accounts,
    authorization,
    code_management,
    component,
    full_network,
    harness,
    jssdk,
    messages,
    miniprogram,
    oauth,
    pusher,
)
from wechat_simulator.protocol import SimError
from wechat_simulator.records import GRACE_SECONDS, PRE_AUTH_CODE_LIFETIME
from wechat_simulator.state import SimState


def _json() -> dict[str, Any]:
    if not request.get_data():
        return {}
    spec = request.get_json(force=True, silent=True)
    if not isinstance(spec, dict):
        raise SimError("invalid_json", "the body must be a JSON object")
    return spec


def _appid(spec: dict[str, Any], message: str = "appid is required") -> str:
    appid = spec.get("appid")
    if not isinstance(appid, str) or not appid:
        raise SimError("missing_parameter", message)
    return appid


def register(app: Flask, state: SimState) -> None:
    """Serve every ``/__sim`` route, and answer a ``SimError`` raised by any route."""

    @app.errorhandler(SimError)
    def refused(problem: SimError) -> tuple[Response, int]:
        return jsonify(problem.describe()), problem.status

    _register_harness(app, state)
    _register_accounts(app, state)
    _register_authorization(app, state)
    _register_miniprogram(app, state)
    _register_web(app, state)
    _register_messages(app, state)
    _register_code_management(app, state)


def _only(spec: dict[str, Any], allowed: set[str]) -> dict[str, Any]:
    unknown = set(spec) - allowed
    if unknown:
        raise SimError("unknown_field", f"unknown fields: {', '.join(sorted(unknown))}")
    return spec


def _register_harness(app: Flask, state: SimState) -> None:
    """Platform, settings, calls, faults, limits, tickets, clock, pushes."""

    @app.get("/__sim/platform")
    def platform() -> Any:
        p = state.platform
        return jsonify(
            appid=p.appid, appsecret=p.appsecret, token=p.token, encoding_aes_key=p.encoding_aes_key
        )

    @app.get("/__sim/settings")
    def settings() -> Any:
        return jsonify(harness.settings(state))

    @app.post("/__sim/settings")
    def change_settings() -> Any:
        return jsonify(harness.change_settings(state, _json()))

    @app.get("/__sim/calls")
    def calls() -> Any:
        return jsonify(harness.calls(state))

    @app.delete("/__sim/calls")
    def reset_calls() -> Any:
        harness.reset_calls(state)
        return jsonify(ok=True)

    @app.get("/__sim/requests")
    def requests_made() -> Any:
        return jsonify(harness.requests_made(state, request.args.get("api")))

    @app.post("/__sim/faults")
    def new_fault() -> Any:
        return jsonify(harness.add_fault(state, _json()))

    @app.delete("/__sim/faults")
    def clear_faults() -> Any:
        harness.clear_faults(state)
        return jsonify(ok=True)

    @app.post("/__sim/limits")
    def set_limit() -> Any:
        spec = _json()
        harness.set_daily_limit(state, str(spec["api"]), int(spec["daily_limit"]))
        return jsonify(ok=True)

    @app.post("/__sim/tickets")
    def register_ticket() -> Any:
        return jsonify(ticket=component.register_ticket(state, _json().get("ticket"))), 201

    @app.post("/__sim/clock")
    def advance_clock() -> Any:
        return jsonify(now=harness.advance_clock(state, float(_json().get("advance", 0))))

    @app.post("/__sim/push/ticket")
    def push_ticket() -> Any:
        spec = _json()
        return jsonify(pusher.push_ticket(state, spec.get("url"), spec.get("create_time")))

    @app.post("/__sim/push/xml")
    def push_xml() -> Any:
        spec = _json()
        return jsonify(
            pusher.push_xml(state, spec["xml"], spec.get("url"), to_user_name=spec.get("to_user_name"))
        )


def _register_accounts(app: Flask, state: SimState) -> None:
    @app.post("/__sim/accounts")
    def add_account() -> Any:
        spec = _json()
        if "kind" not in spec:
            raise SimError("missing_parameter", "kind is required (official_account or mini_program)")
        return jsonify(accounts.create_account(state, **spec)), 201

    @app.get("/__sim/accounts")
    def list_accounts() -> Any:
        return jsonify(accounts.list_accounts(state))

    @app.get("/__sim/accounts/<appid>")
    def account(appid: str) -> Any:
        return jsonify(accounts.describe_account(state, appid))

    @app.post("/__sim/accounts/<appid>/rotation")
    def rotation(appid: str) -> Any:
        spec = _json()
        return jsonify(
            accounts.set_rotation(
                state, appid, spec.get("enabled", True), spec.get("grace_seconds", GRACE_SECONDS)
            )
        )

    @app.post("/__sim/accounts/<appid>/jscode_limit")
    def jscode_limit(appid: str) -> Any:
        return jsonify(accounts.set_jscode_limit(state, appid, _json().get("per_minute")))

    @app.post("/__sim/accounts/<appid>/revoke")
    def revoke(appid: str) -> Any:
        return jsonify(accounts.revoke(state, appid, push=bool(_json().get("push", True))))


def _register_authorization(app: Flask, state: SimState) -> None:
    @app.post("/__sim/pre_auth_code")
    def pre_auth_code() -> Any:
        code = authorization.new_pre_auth_code(state)
        return jsonify(pre_auth_code=code.value, expires_in=PRE_AUTH_CODE_LIFETIME)

    @app.post("/__sim/authorize")
    def authorize() -> Any:
        """The owner's decision without the page: the same checks, the same effects."""
        spec = _json()
        link = authorization.link_from_spec(state, spec)
        appid = _appid(spec, "appid (the account that decides) is required")
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
        appid = _appid(spec)
        return jsonify(
            authorization.query_auth_code(
                state, appid, push=bool(spec.get("push", False)), code=spec.get("code")
            )
        )


def _register_miniprogram(app: Flask, state: SimState) -> None:
    @app.post("/__sim/wxlogin")
    def wx_login() -> Any:
        spec = _json()
        appid = _appid(spec)
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


def _register_web(app: Flask, state: SimState) -> None:
    """Web OAuth on behalf of Official Accounts and JS-SDK tickets (the page is in pages.py)."""

    @app.get("/__sim/oauth_tokens")
    def oauth_tokens() -> Any:
        return jsonify(oauth.oauth_tokens(state))

    @app.get("/__sim/accounts/<appid>/jsapi_tickets")
    def jsapi_tickets(appid: str) -> Any:
        return jsonify(jssdk.jsapi_tickets(state, appid))

    @app.post("/__sim/verify_jssdk")
    def verify_jssdk() -> Any:
        spec = _json()
        unknown = set(spec) - {"appid", "url", "timestamp", "nonce_str", "signature"}
        if unknown:
            raise SimError("unknown_field", f"unknown fields: {', '.join(sorted(unknown))}")
        return jsonify(
            jssdk.verify(
                state,
                spec.get("appid"),
                url=spec.get("url"),
                timestamp=spec.get("timestamp"),
                nonce_str=spec.get("nonce_str"),
                signature=spec.get("signature"),
            )
        )


def _register_messages(app: Flask, state: SimState) -> None:
    """Messages to authorizers' message URLs, customer-service messages, the full-network test."""

    @app.post("/__sim/messages")
    def send_message() -> Any:
        spec = _json()
        unknown = set(spec) - {"appid", "msg_type", "event", "fields", "user", "resend_of"}
        if unknown:
            raise SimError("unknown_field", f"unknown fields: {', '.join(sorted(unknown))}")
        return jsonify(
            messages.send_message(
                state,
                spec.get("appid"),
                spec.get("msg_type"),
                event=spec.get("event"),
                fields=spec.get("fields"),
                user=spec.get("user"),
                resend_of=spec.get("resend_of"),
            )
        )

    @app.get("/__sim/custom-messages")
    def custom_messages() -> Any:
        return jsonify(messages.custom_messages(state, request.args.get("appid")))

    @app.post("/__sim/full-network-test")
    def full_network_test() -> Any:
        spec = _json()
        unknown = set(spec) - {"group", "kinds"}
        if unknown:
            raise SimError("unknown_field", f"unknown fields: {', '.join(sorted(unknown))}")
        return jsonify(full_network.run(state, spec.get("group"), spec.get("kinds")))


DRAFT_FIELDS = {"user_version", "user_desc", "source_miniprogram_appid", "source_miniprogram", "developer"}


def _register_code_management(app: Flask, state: SimState) -> None:
    """Mini Program code management: drafts and templates, audit outcomes and their events, each
    account's code, the submit quota."""

    @app.post("/__sim/drafts")
    def add_draft() -> Any:
        return jsonify(code_management.add_draft(state, **_only(_json(), DRAFT_FIELDS))), 201

    @app.post("/__sim/templates")
    def add_template() -> Any:
        spec = _only(_json(), DRAFT_FIELDS | {"template_type"})
        return jsonify(code_management.add_template(state, **spec)), 201

    @app.post("/__sim/accounts/<appid>/audit_outcome")
    def audit_outcome(appid: str) -> Any:
        spec = _only(_json(), {"outcome", "reason"})
        return jsonify(
            code_management.set_audit_outcome(state, appid, spec.get("outcome"), spec.get("reason"))
        )

    @app.post("/__sim/accounts/<appid>/code_permission")
    def code_permission(appid: str) -> Any:
        spec = _only(_json(), {"granted"})
        return jsonify(code_management.set_code_permission(state, appid, spec.get("granted", True)))

    @app.post("/__sim/audits/finish")
    def finish_audits() -> Any:
        spec = _only(_json(), {"appid", "workers"})
        return jsonify(
            code_management.finish_audits(state, spec.get("appid"), workers=spec.get("workers", 1))
        )

    @app.post("/__sim/accounts/<appid>/audit_event/resend")
    def resend_audit_event(appid: str) -> Any:
        return jsonify(code_management.resend_audit_event(state, appid))

    @app.get("/__sim/accounts/<appid>/code")
    def code_state(appid: str) -> Any:
        return jsonify(code_management.code_state(state, appid))

    @app.get("/__sim/accounts/<appid>/code_calls")
    def code_calls(appid: str) -> Any:
        return jsonify(code_management.code_calls(state, appid))

    @app.get("/__sim/audit_quota")
    def audit_quota() -> Any:
        return jsonify(code_management.audit_quota(state))

    @app.post("/__sim/audit_quota")
    def set_audit_quota() -> Any:
        spec = _only(_json(), {"limit"})
        if "limit" not in spec:
            raise SimError("missing_parameter", "limit is required (an integer, or null: unlimited)")
        return jsonify(code_management.set_audit_quota(state, spec["limit"]))
