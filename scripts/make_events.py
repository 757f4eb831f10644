"""Regenerate events/: API Gateway events for `sam local invoke`, signed with the documented sample key.

The sample platform (local/sample-platform.json) is the one in WeChat's own worked example:
token "AAAAA", EncodingAESKey of 43 "A", component appid wx134c8103faa5a59e
(https://developers.weixin.qq.com/doc/oplatform/Third-party_Platforms/2.0/api/Before_Develop/message_push.html).
Events are signed at a fixed time, so regenerating them gives the same files; local runs accept
them through a wide timestamp window (local/env.json), deployments keep the 300-second default.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "layers/wechat_core"), str(ROOT / "simulator")]

from wechat_core.crypto import MessageCrypto  # noqa: E402
from wechat_core.messages import build_xml  # noqa: E402

from tests.support.event_setups import (  # noqa: E402
    SAMPLE_AUTHORIZATION_CODE,
    SAMPLE_JS_CODE,
    SAMPLE_MINI_PROGRAM,
    SAMPLE_TICKET,
)
from tests.support.lambdas import rest_event  # noqa: E402

SIGNED_AT = 1763856000  # 2025-11-23T00:00:00Z
NONCE = "1590219412"
# Fixed random prefix so the ciphertext, and so the files, are reproducible.
RANDOM16 = b"sample-events-16"


def platform() -> dict[str, str]:
    data: dict[str, str] = json.loads((ROOT / "local/sample-platform.json").read_text("utf-8"))
    return data


def _push(plaintext: str, *, signature_ok: bool = True, nonce: str = NONCE) -> dict[str, Any]:
    p = platform()
    crypto = MessageCrypto(p["token"], p["encoding_aes_key"], p["appid"])
    encrypt = crypto.encrypt(plaintext, random16=RANDOM16)
    body = build_xml({"AppId": p["appid"], "Encrypt": encrypt})
    signature = crypto.signature(str(SIGNED_AT), nonce, encrypt)
    if not signature_ok:
        signature = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    query = {"timestamp": str(SIGNED_AT), "nonce": nonce, "encrypt_type": "aes", "msg_signature": signature}
    return rest_event(
        "POST", "/wechat/component/events", query=query, body=body, headers={"Content-Type": "text/xml"}
    )


def _ticket_xml() -> str:
    return build_xml(
        {
            "AppId": platform()["appid"],
            "CreateTime": SIGNED_AT,
            "InfoType": "component_verify_ticket",
            "ComponentVerifyTicket": SAMPLE_TICKET,
        }
    )


def _authorized_xml() -> str:
    return build_xml(
        {
            "AppId": platform()["appid"],
            "CreateTime": SIGNED_AT,
            "InfoType": "authorized",
            "AuthorizerAppid": SAMPLE_MINI_PROGRAM,
            "AuthorizationCode": SAMPLE_AUTHORIZATION_CODE,
            "AuthorizationCodeExpiredTime": SIGNED_AT + 3600,
            "PreAuthCode": "preauthcode@@@sample",
        }
    )


HOST = {"Host": "127.0.0.1:3000", "X-Forwarded-Proto": "http"}
JSON = {**HOST, "Content-Type": "application/json"}
NEVER_AUTHORIZED = "wx0123456789abcdef"


def _get(path: str, resource: str, query: dict[str, str] | None = None, **params: str) -> dict[str, Any]:
    return rest_event(
        "GET", path, resource=resource, path_parameters=params or None, query=query, headers=HOST
    )


def _post(path: str, resource: str, body: str, headers: dict[str, str], **params: str) -> dict[str, Any]:
    return rest_event(
        "POST", path, resource=resource, path_parameters=params or None, body=body, headers=headers
    )


def _scheduled() -> dict[str, Any]:
    """What EventBridge Scheduler sends the refresher."""
    return {
        "version": "0",
        "id": "00000000-0000-0000-0000-000000000000",
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "account": "123456789012",
        "time": "2025-11-23T00:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:scheduler:us-east-1:123456789012:schedule/default/wechat-refresher"],
        "detail": {},
    }


LOGIN = "/wechat/miniprogram/{appid}/login"
TOKEN = "/wechat/authorizers/{appid}/token"


def _error(status: int, reason: str) -> dict[str, Any]:
    return {"expect": {"statusCode": status}, "body": {"error": reason}}


# name -> (function logical id, event, what `sam local invoke` must answer, with "setup": the
# steps of tests/support/event_setups.py that make the event valid)
EVENTS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "callback-ticket-push.json": (
        "CallbackFunction",
        _push(_ticket_xml()),
        {"expect": {"statusCode": 200, "body": "success"}},
    ),
    "callback-bad-signature.json": (
        "CallbackFunction",
        _push(_ticket_xml(), signature_ok=False),
        {"expect": {"statusCode": 401, "body": '{"error":"signature mismatch"}'}},
    ),
    "callback-authorized-push.json": (
        "CallbackFunction",
        _push(_authorized_xml(), nonce="1590219413"),  # each push has its own nonce
        {"setup": ["ticket", "authorization_code"], "expect": {"statusCode": 200, "body": "success"}},
    ),
    "preauth-authorize.json": (
        "PreAuthFunction",
        _get(
            "/wechat/component/authorize", "/wechat/component/authorize", {"format": "json", "auth_type": "2"}
        ),
        {"setup": ["ticket"], "expect": {"statusCode": 200}, "body_keys": ["expires_in", "mobile", "url"]},
    ),
    "preauth-authorize-bad-auth-type.json": (
        "PreAuthFunction",
        _get("/wechat/component/authorize", "/wechat/component/authorize", {"auth_type": "9"}),
        _error(400, "auth_type must be 1 (official accounts), 2 (mini programs) or 3 (both)"),
    ),
    "preauth-authorized-unknown-state.json": (
        "PreAuthFunction",
        _get(
            "/wechat/component/authorized",
            "/wechat/component/authorized",
            {"state": "not-a-state-we-issued", "auth_code": SAMPLE_AUTHORIZATION_CODE, "expires_in": "3600"},
        ),
        _error(400, "unknown or expired state"),
    ),
    "login.json": (
        "JsCode2SessionFunction",
        _post(
            f"/wechat/miniprogram/{SAMPLE_MINI_PROGRAM}/login",
            LOGIN,
            json.dumps({"code": SAMPLE_JS_CODE}),
            JSON,
            appid=SAMPLE_MINI_PROGRAM,
        ),
        {
            "setup": ["ticket", "authorization", "login_code"],
            "expect": {"statusCode": 200},
            "body_keys": ["expires_in", "openid", "session_token"],
        },
    ),
    "login-wrong-content-type.json": (
        "JsCode2SessionFunction",
        _post(
            f"/wechat/miniprogram/{SAMPLE_MINI_PROGRAM}/login",
            LOGIN,
            f"code={SAMPLE_JS_CODE}",
            {**HOST, "Content-Type": "application/x-www-form-urlencoded"},
            appid=SAMPLE_MINI_PROGRAM,
        ),
        _error(415, "Content-Type must be application/json"),
    ),
    "login-bad-json.json": (
        "JsCode2SessionFunction",
        _post(
            f"/wechat/miniprogram/{SAMPLE_MINI_PROGRAM}/login",
            LOGIN,
            '{"code": ',
            JSON,
            appid=SAMPLE_MINI_PROGRAM,
        ),
        _error(400, "body is not valid JSON"),
    ),
    "login-not-authorized.json": (
        "JsCode2SessionFunction",
        _post(
            f"/wechat/miniprogram/{NEVER_AUTHORIZED}/login",
            LOGIN,
            json.dumps({"code": SAMPLE_JS_CODE}),
            JSON,
            appid=NEVER_AUTHORIZED,
        ),
        _error(404, "this Mini Program has not authorized the platform"),
    ),
    "decrypt-unknown-session.json": (
        "JsCode2SessionFunction",
        _post(
            f"/wechat/miniprogram/{SAMPLE_MINI_PROGRAM}/decrypt",
            "/wechat/miniprogram/{appid}/decrypt",
            json.dumps({"encryptedData": "AAAAAAAAAAAAAAAAAAAAAA==", "iv": "AAAAAAAAAAAAAAAAAAAAAA=="}),
            {**JSON, "Authorization": "Bearer " + "x" * 43},
            appid=SAMPLE_MINI_PROGRAM,
        ),
        _error(401, "unknown or expired session"),
    ),
    "refresher-scheduled.json": (
        "RefresherFunction",
        _scheduled(),
        {
            "setup": ["ticket"],
            "expect": {"component": "refreshed", "due": 0, "failed": 0, "stopped_early": False},
        },
    ),
    "admin-token.json": (
        "AdminFunction",
        _get(f"/wechat/authorizers/{SAMPLE_MINI_PROGRAM}/token", TOKEN, appid=SAMPLE_MINI_PROGRAM),
        {
            "setup": ["ticket", "authorization"],
            "expect": {"statusCode": 200},
            "body": {"authorizer_appid": SAMPLE_MINI_PROGRAM},
            "body_keys": ["authorizer_access_token", "authorizer_appid", "expires_at", "expires_in"],
        },
    ),
    "admin-token-bad-appid.json": (
        "AdminFunction",
        _get("/wechat/authorizers/not-an-appid/token", TOKEN, appid="not-an-appid"),
        _error(400, "appid must be wx + 16 characters"),
    ),
    "admin-token-unknown.json": (
        "AdminFunction",
        _get(f"/wechat/authorizers/{NEVER_AUTHORIZED}/token", TOKEN, appid=NEVER_AUTHORIZED),
        _error(404, "authorizer not found"),
    ),
    "admin-list.json": (
        "AdminFunction",
        _get("/wechat/authorizers", "/wechat/authorizers", {"limit": "50"}),
        {"expect": {"statusCode": 200}, "body": {"authorizers": [], "next": None}},
    ),
    "admin-list-bad-limit.json": (
        "AdminFunction",
        _get("/wechat/authorizers", "/wechat/authorizers", {"limit": "1000"}),
        _error(400, "limit must be between 1 and 500"),
    ),
    "admin-recover.json": (
        "AdminFunction",
        rest_event(
            "POST", "/wechat/authorizers/recover", resource="/wechat/authorizers/recover", headers=HOST
        ),
        {"setup": ["ticket"], "expect": {"statusCode": 200}, "body_keys": ["listed", "restored"]},
    ),
}


def stable(event: dict[str, Any]) -> dict[str, Any]:
    """Drop the per-run request ids so regenerated files are identical."""
    event = json.loads(json.dumps(event))
    if "requestContext" in event:
        event["requestContext"]["requestId"] = "sample-request"
    return event


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "events")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    expectations = {}
    for name, (function, event, expected) in EVENTS.items():
        (args.out / name).write_text(json.dumps(stable(event), indent=2, ensure_ascii=False) + "\n", "utf-8")
        expectations[name] = {"function": function, **expected}
    (args.out / "expected.json").write_text(json.dumps(expectations, indent=2) + "\n", "utf-8")
    print(f"wrote {len(EVENTS)} events to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
