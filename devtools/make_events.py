"""Regenerate events/: API Gateway events for `sam local invoke`, signed with the documented sample key.

The sample platform (local/sample-platform.json) is the one in WeChat's own worked example:
token "AAAAA", EncodingAESKey of 43 "A", component appid wx134c8103faa5a59e
(https://developers.weixin.qq.com/doc/oplatform/Third-party_Platforms/2.0/api/Before_Develop/message_push.html).
Events are signed at a fixed time, so regenerating them gives the same files; local runs accept
them through a wide timestamp window (local/env.json), deployments keep the 300-second default.

    python -m devtools.make_events [--out DIR]     # `make events`; also scripts/make_events.py
"""

from __future__ import annotations

import argparse
import base64
import json
from pathlib import Path
from typing import Any

from wechat_core.protocol.messages import build_xml

from devtools.events import LOCAL_API_HEADERS, error_expectation, push_event, rest_event
from devtools.h5_events import H5_EVENTS
from devtools.message_events import MESSAGE_EVENTS, sign_sample
from devtools.project import ROOT, sample_platform
from devtools.release_events import RELEASE_EVENTS
from devtools.samples import (
    NEVER_AUTHORIZED,
    NONCE,
    SAMPLE_AUTHORIZATION_CODE,
    SAMPLE_JS_CODE,
    SAMPLE_MINI_PROGRAM,
    SAMPLE_OFFICIAL_ACCOUNT,
    SAMPLE_OFFICIAL_ACCOUNT_CODE,
    SAMPLE_SESSION_KEY,
    SAMPLE_SESSION_TOKEN,
    SAMPLE_STATE,
    SAMPLE_TICKET,
    SIGNED_AT,
)


def _push(plaintext: str, *, signature_ok: bool = True, nonce: str = NONCE) -> dict[str, Any]:
    encrypt, signature = sign_sample(plaintext, nonce=nonce, signature_ok=signature_ok)
    body = build_xml({"AppId": sample_platform()["appid"], "Encrypt": encrypt})
    query = {"timestamp": str(SIGNED_AT), "nonce": nonce, "encrypt_type": "aes", "msg_signature": signature}
    return push_event(query, body)


def _ticket_xml() -> str:
    return build_xml(
        {
            "AppId": sample_platform()["appid"],
            "CreateTime": SIGNED_AT,
            "InfoType": "component_verify_ticket",
            "ComponentVerifyTicket": SAMPLE_TICKET,
        }
    )


def _authorized_xml(appid: str = SAMPLE_MINI_PROGRAM, code: str = SAMPLE_AUTHORIZATION_CODE) -> str:
    return build_xml(
        {
            "AppId": sample_platform()["appid"],
            "CreateTime": SIGNED_AT,
            "InfoType": "authorized",
            "AuthorizerAppid": appid,
            "AuthorizationCode": code,
            "AuthorizationCodeExpiredTime": SIGNED_AT + 3600,
            "PreAuthCode": "preauthcode@@@sample",
        }
    )


def _unknown_xml() -> str:
    """An InfoType this service does not handle (WeChat adds new ones): logged, answered, not stored."""
    return build_xml(
        {"AppId": sample_platform()["appid"], "CreateTime": SIGNED_AT, "InfoType": "sample_new_info_type"}
    )


def _user_data(session_key: str, iv: bytes, watermark_timestamp: int) -> str:
    """``encryptedData`` as WeChat gives getPhoneNumber's (AES-128-CBC, PKCS#7, watermark inside)."""
    from Crypto.Cipher import AES  # noqa: PLC0415

    plain = json.dumps(
        {
            "phoneNumber": "13800138000",
            "purePhoneNumber": "13800138000",
            "countryCode": "86",
            "watermark": {"appid": SAMPLE_MINI_PROGRAM, "timestamp": watermark_timestamp},
        },
        separators=(",", ":"),
    ).encode()
    pad = 16 - len(plain) % 16
    cipher = AES.new(base64.b64decode(session_key), AES.MODE_CBC, iv)
    return base64.b64encode(cipher.encrypt(plain + bytes([pad]) * pad)).decode()


HOST = LOCAL_API_HEADERS
JSON = {**HOST, "Content-Type": "application/json"}
USER_DATA_IV = b"sample-iv-16byte"


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


AUTHORIZE = "/wechat/component/authorize"
AUTHORIZED = "/wechat/component/authorized"
LOGIN = "/wechat/miniprogram/{appid}/login"
DECRYPT = "/wechat/miniprogram/{appid}/decrypt"
TOKEN = "/wechat/authorizers/{appid}/token"
COMPONENT_TOKEN = "/wechat/component/token"
MP_LOGIN = f"/wechat/miniprogram/{SAMPLE_MINI_PROGRAM}/login"
MP_DECRYPT = f"/wechat/miniprogram/{SAMPLE_MINI_PROGRAM}/decrypt"
COMPONENT = sample_platform()["appid"]

# What a link we make looks like: a fresh pre_auth_code and state each time, the simulator's host.
_Q = r"[^&#]+"
PC_LINK = (
    rf"https?://[^/]+/cgi-bin/componentloginpage\?component_appid={COMPONENT}"
    rf"&pre_auth_code=preauthcode%40%40%40{_Q}"
    r"&redirect_uri=http%3A%2F%2F127\.0\.0\.1%3A[0-9]+%2Fwechat%2Fcomponent%2Fauthorized%3Fstate%3D"
    rf"[A-Za-z0-9_-]{{32}}&auth_type=2"
)
MOBILE_LINK = (
    r"https?://[^/]+/wxaopen/safe/bindcomponent\?action=bindcomponent&no_scan=1"
    rf"&component_appid={COMPONENT}&pre_auth_code=preauthcode%40%40%40{_Q}"
    r"&redirect_uri=http%3A%2F%2F127\.0\.0\.1%3A[0-9]+%2Fwechat%2Fcomponent%2Fauthorized%3Fstate%3D"
    rf"[A-Za-z0-9_-]{{32}}&auth_type=3&biz_appid={SAMPLE_MINI_PROGRAM}#wechat_redirect"
)
SESSION_TOKEN = r"[A-Za-z0-9_-]{43}"  # secrets.token_urlsafe(32)
OPENID = r"o[A-Za-z0-9_-]{27}"
REPORT = {  # the refresher's report, every field
    "component": "fresh",
    "due": 0,
    "refreshed": 0,
    "skipped": 0,
    "failed": 0,
    "needs_reauthorization": 0,
    "quota_exceeded": False,
    "stopped_early": False,
    "errors": {},
}


# No input makes these routes fail, only a missing ticket: they answer 503 and ask WeChat to push one.
NO_TICKET = (
    {"setup": ["no_ticket"]}
    | error_expectation(503, "no component_verify_ticket received yet")
    | {"then": ["ticket_push_requested"]}
)

# name -> (function logical id, event, what `sam local invoke` must answer (see check_answer in
# tests/support/event_setups.py), "setup": the steps there that make the event valid first, "then":
# what must hold in the table afterwards)
EVENTS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    # --- CallbackFunction: POST /wechat/component/events ---------------------------------------------
    "callback-ticket-push.json": (
        "CallbackFunction",
        _push(_ticket_xml()),
        {"expect": {"statusCode": 200, "body": "success"}, "then": ["ticket_stored"]},
    ),
    "callback-authorized-push.json": (
        "CallbackFunction",
        _push(_authorized_xml(), nonce="1590219413"),  # each push has its own nonce
        {
            "setup": ["ticket", "authorization_code"],
            "expect": {"statusCode": 200, "body": "success"},
            "then": ["authorization_stored"],
        },
    ),
    "callback-authorized-push-official-account.json": (
        "CallbackFunction",
        _push(_authorized_xml(SAMPLE_OFFICIAL_ACCOUNT, SAMPLE_OFFICIAL_ACCOUNT_CODE), nonce="1590219415"),
        {
            "setup": ["ticket", "official_account_code"],
            "expect": {"statusCode": 200, "body": "success"},
            "then": ["official_account_stored"],
        },
    ),
    "callback-unknown-info-type.json": (
        "CallbackFunction",
        _push(_unknown_xml(), nonce="1590219414"),
        {"expect": {"statusCode": 200, "body": "success"}, "then": ["no_ticket_stored"]},
    ),
    "callback-bad-signature.json": (
        "CallbackFunction",
        _push(_ticket_xml(), signature_ok=False),
        {"expect": {"statusCode": 401, "body": '{"error":"signature mismatch"}'}, "then": ["table_empty"]},
    ),
    # --- MessagesFunction: POST /wechat/authorizers/{appid}/messages (devtools/message_events.py) ----
    **MESSAGE_EVENTS,
    # --- PreAuthFunction: GET /wechat/component/authorize, GET /wechat/component/authorized ----------
    "preauth-authorize.json": (
        "PreAuthFunction",
        _get(AUTHORIZE, AUTHORIZE, {"format": "json", "auth_type": "2"}),
        {
            "setup": ["ticket"],
            "expect": {"statusCode": 200},
            "headers": {"Content-Type": "application/json", "Cache-Control": "no-store"},
            "body_keys": ["expires_in", "mobile", "url"],
            "body": {"expires_in": 1800, "mobile": False},
            "body_match": {"url": PC_LINK},
        },
    ),
    "preauth-authorize-mobile-redirect.json": (
        "PreAuthFunction",
        _get(
            AUTHORIZE,
            AUTHORIZE,
            {"format": "redirect", "mobile": "1", "auth_type": "3", "biz_appid": SAMPLE_MINI_PROGRAM},
        ),
        {
            "setup": ["ticket"],
            "expect": {"statusCode": 302, "body": ""},
            "headers": {"Location": MOBILE_LINK, "Cache-Control": "no-store"},
        },
    ),
    "preauth-authorize-bad-auth-type.json": (
        "PreAuthFunction",
        _get(AUTHORIZE, AUTHORIZE, {"auth_type": "9"}),
        error_expectation(400, "auth_type must be 1 (official accounts), 2 (mini programs) or 3 (both)"),
    ),
    "preauth-authorized.json": (
        "PreAuthFunction",
        _get(
            AUTHORIZED,
            AUTHORIZED,
            {"state": SAMPLE_STATE, "auth_code": SAMPLE_AUTHORIZATION_CODE, "expires_in": "3600"},
        ),
        {
            "setup": ["ticket", "authorization_code", "state"],
            "expect": {"statusCode": 200},
            "headers": {"Content-Type": "text/html"},
            "body_contains": [f"Authorization complete: {SAMPLE_MINI_PROGRAM}</p>"],
            "then": ["authorization_stored"],
        },
    ),
    "preauth-authorized-unknown-state.json": (
        "PreAuthFunction",
        _get(
            AUTHORIZED,
            AUTHORIZED,
            {"state": "not-a-state-we-issued", "auth_code": SAMPLE_AUTHORIZATION_CODE, "expires_in": "3600"},
        ),
        error_expectation(400, "unknown or expired state") | {"then": ["table_empty"]},
    ),
    # --- JsCode2SessionFunction: POST /wechat/miniprogram/{appid}/login and /decrypt -----------------
    "login.json": (
        "JsCode2SessionFunction",
        _post(MP_LOGIN, LOGIN, json.dumps({"code": SAMPLE_JS_CODE}), JSON, appid=SAMPLE_MINI_PROGRAM),
        {
            "setup": ["ticket", "authorization", "login_code"],
            "expect": {"statusCode": 200},
            "body_keys": ["expires_in", "openid", "session_token"],
            "body": {"expires_in": 604800},
            "body_match": {"openid": OPENID, "session_token": SESSION_TOKEN},
        },
    ),
    "login-wrong-content-type.json": (
        "JsCode2SessionFunction",
        _post(
            MP_LOGIN,
            LOGIN,
            f"code={SAMPLE_JS_CODE}",
            {**HOST, "Content-Type": "application/x-www-form-urlencoded"},
            appid=SAMPLE_MINI_PROGRAM,
        ),
        error_expectation(415, "Content-Type must be application/json"),
    ),
    "login-bad-json.json": (
        "JsCode2SessionFunction",
        _post(MP_LOGIN, LOGIN, '{"code": ', JSON, appid=SAMPLE_MINI_PROGRAM),
        error_expectation(400, "body is not valid JSON"),
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
        error_expectation(404, "this Mini Program has not authorized the platform"),
    ),
    "decrypt-stale-watermark.json": (
        "JsCode2SessionFunction",
        _post(
            MP_DECRYPT,
            DECRYPT,
            json.dumps(
                {
                    "encryptedData": _user_data(SAMPLE_SESSION_KEY, USER_DATA_IV, SIGNED_AT),
                    "iv": base64.b64encode(USER_DATA_IV).decode(),
                }
            ),
            {**JSON, "Authorization": f"Bearer {SAMPLE_SESSION_TOKEN}"},
            appid=SAMPLE_MINI_PROGRAM,
        ),
        # The session of an authorized Mini Program, decrypted with its key and the watermark's
        # appid checked; a static file cannot carry a watermark younger than an hour, so its age
        # is what is refused.
        {"setup": ["ticket", "authorization", "session"]}
        | error_expectation(400, "watermark timestamp is too old"),
    ),
    "decrypt-unknown-session.json": (
        "JsCode2SessionFunction",
        _post(
            MP_DECRYPT,
            DECRYPT,
            json.dumps({"encryptedData": "AAAAAAAAAAAAAAAAAAAAAA==", "iv": "AAAAAAAAAAAAAAAAAAAAAA=="}),
            {**JSON, "Authorization": "Bearer " + "x" * 43},
            appid=SAMPLE_MINI_PROGRAM,
        ),
        error_expectation(401, "unknown or expired session"),
    ),
    # --- RefresherFunction: the EventBridge schedule -------------------------------------------------
    "refresher-scheduled.json": (
        "RefresherFunction",
        _scheduled(),
        {
            "setup": ["ticket", "authorization", "authorizer_due"],
            "expect": REPORT | {"due": 1, "refreshed": 1},
        },
    ),
    "refresher-no-ticket.json": (
        "RefresherFunction",
        _scheduled(),
        {
            "setup": ["no_ticket"],
            "expect": REPORT | {"component": "no_ticket"},
            "then": ["ticket_push_requested"],
        },
    ),
    # --- AdminFunction (IAM): the token service and authorization management ------------------------
    "admin-token.json": (
        "AdminFunction",
        _get(f"/wechat/authorizers/{SAMPLE_MINI_PROGRAM}/token", TOKEN, appid=SAMPLE_MINI_PROGRAM),
        {
            "setup": ["ticket", "authorization"],
            "expect": {"statusCode": 200},
            "body_keys": ["authorizer_access_token", "authorizer_appid", "expires_at", "expires_in"],
            "body": {"authorizer_appid": SAMPLE_MINI_PROGRAM},
            "body_match": {
                "authorizer_access_token": r"sim_aat_[A-Za-z0-9_-]+",
                "expires_at": r"[0-9]{10}",
                "expires_in": r"71[0-9]{2}|7200",
            },
        },
    ),
    "admin-token-bad-appid.json": (
        "AdminFunction",
        _get("/wechat/authorizers/not-an-appid/token", TOKEN, appid="not-an-appid"),
        error_expectation(400, "appid must be wx + 16 characters"),
    ),
    "admin-token-unknown.json": (
        "AdminFunction",
        _get(f"/wechat/authorizers/{NEVER_AUTHORIZED}/token", TOKEN, appid=NEVER_AUTHORIZED),
        error_expectation(404, "authorizer not found"),
    ),
    "admin-list.json": (
        "AdminFunction",
        _get("/wechat/authorizers", "/wechat/authorizers", {"limit": "50"}),
        {
            "setup": ["ticket", "authorization"],
            "expect": {"statusCode": 200},
            "body_keys": ["authorizers", "next"],
            "body": {
                "authorizers": [
                    {
                        "authorizer_appid": SAMPLE_MINI_PROGRAM,
                        "status": "active",
                        "info": {"kind": "mini_program"},
                    }
                ],
                "next": None,
            },
        },
    ),
    "admin-list-bad-limit.json": (
        "AdminFunction",
        _get("/wechat/authorizers", "/wechat/authorizers", {"limit": "1000"}),
        error_expectation(400, "limit must be between 1 and 500"),
    ),
    "admin-recover.json": (
        "AdminFunction",
        rest_event(
            "POST", "/wechat/authorizers/recover", resource="/wechat/authorizers/recover", headers=HOST
        ),
        {
            "setup": ["ticket", "authorization", "authorization_lost"],
            "expect": {"statusCode": 200},
            "body_keys": ["listed", "restored"],
            "body": {"listed": 1, "restored": 1},
            "then": ["authorization_stored"],
        },
    ),
    "admin-recover-no-ticket.json": (
        "AdminFunction",
        rest_event(
            "POST", "/wechat/authorizers/recover", resource="/wechat/authorizers/recover", headers=HOST
        ),
        NO_TICKET,
    ),
    # --- ComponentTokenFunction (IAM): GET /wechat/component/token ---------------------------------
    "component-token.json": (
        "ComponentTokenFunction",
        _get(COMPONENT_TOKEN, COMPONENT_TOKEN),
        {
            "setup": ["ticket"],
            "expect": {"statusCode": 200},
            "body_keys": ["component_access_token", "expires_at", "expires_in"],
            "body_match": {
                "component_access_token": r"sim_cat_[A-Za-z0-9_-]+",
                "expires_at": r"[0-9]{10}",
                "expires_in": r"71[0-9]{2}|7200",
            },
        },
    ),
    "component-token-no-ticket.json": (
        "ComponentTokenFunction",
        _get(COMPONENT_TOKEN, COMPONENT_TOKEN),
        NO_TICKET,
    ),
    # --- H5Function and AdminFunction's H5 routes (devtools/h5_events.py) ----------------------------
    **H5_EVENTS,
    # --- ReleasesFunction and ReleaseWorkerFunction: Mini Program releases (devtools/release_events.py)
    **RELEASE_EVENTS,
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
    for stale in sorted(set(args.out.glob("*.json")) - {args.out / n for n in [*EVENTS, "expected.json"]}):
        stale.unlink()
        print(f"removed {stale.name} (no longer generated)")
    expectations = {}
    for name, (function, event, expected) in EVENTS.items():
        (args.out / name).write_text(json.dumps(stable(event), indent=2, ensure_ascii=False) + "\n", "utf-8")
        expectations[name] = {"function": function, **expected}
    (args.out / "expected.json").write_text(json.dumps(expectations, indent=2) + "\n", "utf-8")
    print(f"wrote {len(EVENTS)} events to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
