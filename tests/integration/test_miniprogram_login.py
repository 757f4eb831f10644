"""Mini Program login through the platform, over HTTP: the loopback gateway in front of the real
jscode2session handler, DynamoDB on moto's server, WeChat played by the simulator.

Every test here also runs the autouse check in conftest: no session_key the simulator issued
appears in any response, header or log line.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from wechat_core import config, runtime
from wechat_simulator import Simulator

from tests.conftest import FixedClock
from tests.support.aws import Resources
from tests.support.flows import add_fault, authorize, calls, give_ticket
from tests.support.gateway import Gateway
from tests.support.lambdas import load_function
from tests.support.pushes import EVENTS_PATH

pytestmark = pytest.mark.integration


@pytest.fixture
def mini(service: Resources, simulator: Simulator) -> str:
    """An authorized Mini Program (a ticket is stored, so the component token can be had)."""
    give_ticket(simulator)
    return authorize(simulator, "mini_program")


def login(gateway: Gateway, appid: str, body: Any = None, **kwargs: Any) -> requests.Response:
    if body is not None:
        kwargs["json"] = body
    return requests.post(f"{gateway.url}/wechat/miniprogram/{appid}/login", timeout=10, **kwargs)


def decrypt(gateway: Gateway, appid: str, session_token: str, payload: dict[str, Any]) -> requests.Response:
    return requests.post(
        f"{gateway.url}/wechat/miniprogram/{appid}/decrypt",
        json={"encryptedData": payload["encryptedData"], "iv": payload["iv"]},
        headers={"Authorization": f"Bearer {session_token}"},
        timeout=10,
    )


def session_items(resources: Resources) -> list[dict[str, Any]]:
    return [i for i in resources.items() if i["sk"]["S"].startswith("session#")]


def test_user_logs_in_and_gets_openid_and_a_session_token(
    mini: str, simulator: Simulator, gateway: Gateway, service: Resources
) -> None:
    answer = login(gateway, mini, {"code": simulator.wx_login(mini)})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    issued = simulator.session_keys()
    assert len(issued) == 1
    assert body["openid"] == issued[0]["openid"]
    assert "unionid" not in body  # the account is not bound to an open platform account
    assert set(body) == {"openid", "session_token", "expires_in"}
    assert body["expires_in"] == 7 * 24 * 3600
    # The session is stored under a hash of our token (a table dump gives no usable token), with a TTL.
    (item,) = session_items(service)
    assert item["sk"]["S"] == "session#" + hashlib.sha256(body["session_token"].encode()).hexdigest()
    assert body["session_token"] not in json.dumps(item)
    assert int(item["expiration"]["N"]) > 0
    assert calls(simulator, "jscode2session") == 1


def test_unionid_is_given_for_accounts_bound_to_an_open_platform_account(
    service: Resources, simulator: Simulator, gateway: Gateway
) -> None:
    give_ticket(simulator)
    appid = authorize(simulator, "mini_program", unionid_bound=True)
    body = login(gateway, appid, {"code": simulator.wx_login(appid)}).json()
    assert body["unionid"] == simulator.session_keys()[0]["unionid"]
    assert body["unionid"]


def test_login_uses_the_shared_component_token(mini: str, simulator: Simulator, gateway: Gateway) -> None:
    before = calls(simulator, "api_component_token")
    for _ in range(3):
        assert login(gateway, mini, {"code": simulator.wx_login(mini)}).status_code == 200
    assert calls(simulator, "api_component_token") == before
    assert calls(simulator, "jscode2session") == 3


def test_a_code_used_twice_is_a_400(
    mini: str, simulator: Simulator, gateway: Gateway, service: Resources
) -> None:
    code = simulator.wx_login(mini)
    assert login(gateway, mini, {"code": code}).status_code == 200
    again = login(gateway, mini, {"code": code})
    assert (again.status_code, again.json()) == (400, {"error": "code already used (WeChat errcode 40163)"})
    assert len(session_items(service)) == 1


def test_an_invalid_code_is_a_400(
    mini: str, simulator: Simulator, gateway: Gateway, service: Resources
) -> None:
    answer = login(gateway, mini, {"code": "0" * 32})
    assert (answer.status_code, answer.json()) == (400, {"error": "invalid code (WeChat errcode 40029)"})
    assert session_items(service) == []


def test_accounts_not_authorized_here_get_a_4xx_without_calling_wechat(
    mini: str, simulator: Simulator, gateway: Gateway, service: Resources
) -> None:
    stranger = str(simulator.add_account("mini_program")["appid"])  # exists at WeChat, never authorized us
    answer = login(gateway, stranger, {"code": simulator.wx_login(stranger)})
    assert (answer.status_code, answer.json()) == (
        404,
        {"error": "this Mini Program has not authorized the platform"},
    )
    official = authorize(simulator, "official_account")
    answer = login(gateway, official, {"code": "a" * 32})
    assert (answer.status_code, answer.json()) == (400, {"error": "this account is not a Mini Program"})
    simulator.callback_url = gateway.url + EVENTS_PATH
    simulator.revoke(mini, push=True)
    answer = login(gateway, mini, {"code": simulator.wx_login(stranger)})
    assert (answer.status_code, answer.json()) == (
        403,
        {"error": "this Mini Program's authorization is not active"},
    )
    assert calls(simulator, "jscode2session") == 0
    assert session_items(service) == []


def test_wechat_errors_map_to_clear_answers(mini: str, simulator: Simulator, gateway: Gateway) -> None:
    simulator.set_jscode_limit(mini, 1)
    assert login(gateway, mini, {"code": simulator.wx_login(mini)}).status_code == 200
    limited = login(gateway, mini, {"code": simulator.wx_login(mini)})
    assert limited.status_code == 429
    assert limited.json() == {
        "error": "too many requests for this account, try again in a minute (WeChat errcode 45011)"
    }
    simulator.set_jscode_limit(mini, None)
    simulator.revoke(mini, push=False)  # the unauthorized push was lost: WeChat says 61003
    refused = login(gateway, mini, {"code": "b" * 32})
    assert refused.status_code == 403
    assert refused.json() == {"error": "the account has not authorized this platform (WeChat errcode 61003)"}


@pytest.mark.parametrize(
    "fault",
    [{"errcode": -1}, {"http_status": 500}, {"http_status": 503}, {"delay": 1.5}],
    ids=["busy", "http-500", "http-503", "timeout"],
)
def test_transient_failures_are_retried_then_answered_502(
    mini: str, simulator: Simulator, gateway: Gateway, service: Resources, fault: dict[str, Any]
) -> None:
    add_fault(simulator, api="jscode2session", times=1, **fault)
    recovered = login(gateway, mini, {"code": simulator.wx_login(mini)})
    assert recovered.status_code == 200, recovered.text
    assert calls(simulator, "jscode2session") == 2
    attempts = config.settings().wechat_max_attempts
    add_fault(simulator, api="jscode2session", times=attempts, **fault)
    failed = login(gateway, mini, {"code": simulator.wx_login(mini)})
    assert failed.status_code == 502
    assert set(failed.json()) == {"error"}
    assert calls(simulator, "jscode2session") == 2 + attempts
    assert len(session_items(service)) == 1


@pytest.mark.parametrize(
    ("kwargs", "status", "reason"),
    [
        ({}, 415, "Content-Type must be application/json"),
        ({"data": b"", "headers": {"Content-Type": "application/json"}}, 400, "body is not valid JSON"),
        ({"data": b"{nope", "headers": {"Content-Type": "application/json"}}, 400, "body is not valid JSON"),
        (
            {"data": b"\xff\xfe", "headers": {"Content-Type": "application/json"}},
            400,
            "body is not valid JSON",
        ),
        ({"json": ["code"]}, 400, "body must be a JSON object"),
        ({"json": {}}, 400, "missing code"),
        ({"json": {"code": ""}}, 400, "missing code"),
        ({"json": {"code": 12345678}}, 400, "missing code"),
        ({"json": {"code": "../../etc"}}, 400, "code must be the string wx.login gave"),
        (
            {"data": b'{"code":"x"}', "headers": {"Content-Type": "text/plain"}},
            415,
            "Content-Type must be application/json",
        ),
        (
            {
                "data": json.dumps({"code": "a" * 20_000}).encode(),
                "headers": {"Content-Type": "application/json"},
            },
            413,
            "body over 16384 bytes",
        ),
    ],
)
def test_bad_requests_are_refused_and_change_nothing(
    mini: str,
    simulator: Simulator,
    gateway: Gateway,
    service: Resources,
    kwargs: dict[str, Any],
    status: int,
    reason: str,
) -> None:
    before = service.snapshot()
    answer = login(gateway, mini, **kwargs)
    assert (answer.status_code, answer.json()) == (status, {"error": reason})
    assert service.snapshot() == before
    assert calls(simulator, "jscode2session") == 0


def test_malformed_appid_is_refused(mini: str, simulator: Simulator, gateway: Gateway) -> None:
    answer = login(gateway, "wx-not-an-appid", {"code": "a" * 32})
    assert (answer.status_code, answer.json()) == (400, {"error": "appid must be wx + 16 characters"})
    assert calls(simulator, "jscode2session") == 0


# --- CORS ---------------------------------------------------------------------------------------


@pytest.fixture
def cors_gateway(service: Resources, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateway]:
    """The login function loaded fresh with ALLOWED_ORIGINS set (the resolver reads it at import)."""
    import sys

    monkeypatch.setenv("ALLOWED_ORIGINS", "https://h5.example.com, https://shop.example.com")
    monkeypatch.delitem(sys.modules, "fn_functions_jscode2session", raising=False)
    gw = Gateway().start()
    yield gw
    gw.stop()
    sys.modules.pop("fn_functions_jscode2session", None)
    load_function("functions/jscode2session")


def test_cors_for_allowed_origins_only(mini: str, simulator: Simulator, cors_gateway: Gateway) -> None:
    url = f"{cors_gateway.url}/wechat/miniprogram/{mini}/login"
    allowed = requests.post(
        url,
        json={"code": simulator.wx_login(mini)},
        headers={"Origin": "https://shop.example.com"},
        timeout=10,
    )
    assert allowed.status_code == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"
    other = requests.post(
        url, json={"code": simulator.wx_login(mini)}, headers={"Origin": "https://evil.example"}, timeout=10
    )
    assert "Access-Control-Allow-Origin" not in other.headers
    preflight = requests.options(
        url,
        headers={
            "Origin": "https://h5.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
        timeout=10,
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://h5.example.com"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]


# --- user data ----------------------------------------------------------------------------------


@pytest.fixture
def session(mini: str, simulator: Simulator, gateway: Gateway) -> dict[str, Any]:
    body: dict[str, Any] = login(gateway, mini, {"code": simulator.wx_login(mini)}).json()
    return body


def test_encrypted_phone_number_decrypts_through_the_session(
    mini: str, simulator: Simulator, gateway: Gateway, session: dict[str, Any]
) -> None:
    payload = simulator.user_data("phone", openid=session["openid"], appid=mini)
    answer = decrypt(gateway, mini, session["session_token"], payload)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"data": payload["plain"]}
    assert answer.json()["data"]["purePhoneNumber"]
    # The session token may also come in the body.
    in_body = requests.post(
        f"{gateway.url}/wechat/miniprogram/{mini}/decrypt",
        json={
            "session_token": session["session_token"],
            "encryptedData": payload["encryptedData"],
            "iv": payload["iv"],
        },
        timeout=10,
    )
    assert in_body.json() == {"data": payload["plain"]}
    info = simulator.user_data("userinfo", openid=session["openid"], appid=mini)
    assert decrypt(gateway, mini, session["session_token"], info).json() == {"data": info["plain"]}


def _tampered(payload: dict[str, Any]) -> dict[str, Any]:
    raw = bytearray(base64.b64decode(payload["encryptedData"]))
    raw[-1] ^= 0x01  # breaks the padding or the JSON of the last block
    return payload | {"encryptedData": base64.b64encode(bytes(raw)).decode()}


@pytest.mark.parametrize(
    ("change", "status", "reason"),
    [
        (
            lambda p, mini: p | {"iv": base64.b64encode(b"short").decode()},
            400,
            "encryptedData or iv has the wrong length",
        ),
        (lambda p, mini: p | {"encryptedData": "***"}, 400, "encryptedData is not valid base64"),
        (lambda p, mini: p | {"iv": ""}, 400, "missing iv"),
        (lambda p, mini: _tampered(p), 400, "cannot decrypt encryptedData with this session"),
    ],
    ids=["short-iv", "bad-base64", "missing-iv", "tampered"],
)
def test_bad_user_data_is_refused(
    mini: str,
    simulator: Simulator,
    gateway: Gateway,
    session: dict[str, Any],
    change: Any,
    status: int,
    reason: str,
) -> None:
    payload = change(simulator.user_data("phone", openid=session["openid"], appid=mini), mini)
    answer = decrypt(gateway, mini, session["session_token"], payload)
    assert (answer.status_code, answer.json()) == (status, {"error": reason})


def test_wrong_watermark_appid_is_refused(
    mini: str, simulator: Simulator, gateway: Gateway, session: dict[str, Any]
) -> None:
    forged = simulator.user_data(
        "phone", openid=session["openid"], appid=mini, watermark_appid="wx" + "e" * 16
    )
    answer = decrypt(gateway, mini, session["session_token"], forged)
    assert (answer.status_code, answer.json()) == (
        403,
        {"error": "watermark appid does not match this Mini Program"},
    )


def test_stale_watermark_is_refused(
    mini: str, simulator: Simulator, gateway: Gateway, session: dict[str, Any], fixed_clock: FixedClock
) -> None:
    payload = simulator.user_data("phone", openid=session["openid"], appid=mini)
    fixed_clock.advance(3601)
    answer = decrypt(gateway, mini, session["session_token"], payload)
    assert (answer.status_code, answer.json()) == (400, {"error": "watermark timestamp is too old"})


def test_unknown_or_foreign_sessions_are_refused(
    mini: str, simulator: Simulator, gateway: Gateway, session: dict[str, Any]
) -> None:
    payload = simulator.user_data("phone", openid=session["openid"], appid=mini)
    unknown = decrypt(gateway, mini, "A" * 43, payload)
    assert (unknown.status_code, unknown.json()) == (401, {"error": "unknown or expired session"})
    missing = decrypt(gateway, mini, "", payload)
    assert missing.status_code == 401
    other = authorize(simulator, "mini_program")
    foreign = decrypt(gateway, other, session["session_token"], payload)
    assert (foreign.status_code, foreign.json()) == (
        403,
        {"error": "session belongs to another Mini Program"},
    )


def test_session_key_is_stored_but_never_returned(
    mini: str, simulator: Simulator, gateway: Gateway, service: Resources, session: dict[str, Any]
) -> None:
    (issued,) = simulator.session_keys()
    item = runtime.store().get("session#" + hashlib.sha256(session["session_token"].encode()).hexdigest())
    assert item is not None
    assert item["session_key"] == issued["session_key"]
    assert issued["session_key"] not in json.dumps(session)
