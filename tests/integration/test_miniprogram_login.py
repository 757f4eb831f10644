"""Mini Program login through the platform, over HTTP: the loopback gateway in front of the real
jscode2session handler, DynamoDB on moto's server, WeChat played by the simulator.

Every test here also runs the autouse check in conftest (no session_key the simulator issued
appears in any response, stdout/stderr or log record); the secrecy test at the end goes further:
debug logs, the ``logs`` capture, X-Ray metadata, and more encodings of the key.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from types import ModuleType
from typing import Any
from urllib.parse import quote

import pytest
import requests
from aws_lambda_powertools import Tracer
from wechat_core import runtime
from wechat_core.features import miniprogram
from wechat_core.store import keys
from wechat_simulator import Simulator
from wechat_simulator.miniprogram import encrypt_user_data

from devtools.events import EVENTS_PATH
from devtools.resources import Resources
from devtools.template import ttl_attribute
from tests.conftest import FixedClock, LogCapture
from tests.support.flows import add_fault, authorize, calls, give_ticket
from tests.support.gateway import Gateway
from tests.support.lambdas import load_function

pytestmark = pytest.mark.integration

FUNCTION = "functions/jscode2session"
SESSION_TTL_SECONDS = 7 * 24 * 3600


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


def stored_component_token() -> str:
    item = runtime.store().tokens.read(keys.COMPONENT_TOKEN_SK)
    assert item is not None
    return str(item["access_token"])


def jscode2session_tokens(sim: Simulator) -> list[str]:
    """The component_access_token of every jscode2session call the simulator received."""
    rows = requests.get(f"{sim.url}/__sim/requests", params={"api": "jscode2session"}, timeout=5).json()
    return [row["query"].get("component_access_token", "") for row in rows]


# --- login --------------------------------------------------------------------------------------


def test_user_logs_in_and_gets_openid_and_a_session_token(
    mini: str, simulator: Simulator, gateway: Gateway, service: Resources
) -> None:
    started = time.time()
    answer = login(gateway, mini, {"code": simulator.wx_login(mini)})
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("application/json")
    body = answer.json()
    (issued,) = simulator.session_keys()
    assert body["openid"] == issued["openid"]
    assert "unionid" not in body  # the account is not bound to an open platform account
    assert set(body) == {"openid", "session_token", "expires_in"}
    assert body["expires_in"] == SESSION_TTL_SECONDS
    assert len(body["session_token"]) >= 43  # 256 random bits
    # The session is stored under a hash of our token (a table dump gives no usable token), with the
    # TTL attribute the table's TimeToLiveSpecification names, set to the session's end.
    (item,) = session_items(service)
    assert item["sk"]["S"] == "session#" + hashlib.sha256(body["session_token"].encode()).hexdigest()
    assert body["session_token"] not in json.dumps(item)
    expiration = int(item[ttl_attribute()]["N"])
    assert started + SESSION_TTL_SECONDS - 5 <= expiration <= time.time() + SESSION_TTL_SECONDS + 5
    assert item["appid"]["S"] == mini
    assert item["openid"]["S"] == issued["openid"]
    assert calls(simulator, "jscode2session") == 1


def test_unionid_is_given_for_accounts_bound_to_an_open_platform_account(
    service: Resources, simulator: Simulator, gateway: Gateway
) -> None:
    give_ticket(simulator)
    appid = authorize(simulator, "mini_program", unionid_bound=True)
    answer = login(gateway, appid, {"code": simulator.wx_login(appid)})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    (issued,) = simulator.session_keys()
    assert issued["unionid"]
    assert body["unionid"] == issued["unionid"]
    assert set(body) == {"openid", "unionid", "session_token", "expires_in"}


def test_each_login_gets_its_own_session(mini: str, simulator: Simulator, gateway: Gateway) -> None:
    first = login(gateway, mini, {"code": simulator.wx_login(mini)}).json()
    second = login(gateway, mini, {"code": simulator.wx_login(mini)}).json()
    assert first["openid"] == second["openid"]  # the same user
    assert first["session_token"] != second["session_token"]


def test_content_type_parameters_are_accepted(mini: str, simulator: Simulator, gateway: Gateway) -> None:
    answer = login(
        gateway,
        mini,
        data=json.dumps({"code": simulator.wx_login(mini)}).encode(),
        headers={"Content-Type": "Application/JSON; charset=utf-8"},
    )
    assert answer.status_code == 200, answer.text


def test_login_uses_the_shared_component_token(mini: str, simulator: Simulator, gateway: Gateway) -> None:
    before = calls(simulator, "api_component_token")
    assert before == 1  # fetched once, when the authorization was completed
    for _ in range(2):
        assert login(gateway, mini, {"code": simulator.wx_login(mini)}).status_code == 200
    # A new Lambda instance (nothing remembered in-process) reads the stored token as well.
    runtime.token_memo().clear()
    assert login(gateway, mini, {"code": simulator.wx_login(mini)}).status_code == 200
    assert calls(simulator, "api_component_token") == before
    assert jscode2session_tokens(simulator) == [stored_component_token()] * 3


def test_a_component_token_wechat_refuses_is_refreshed_once(
    mini: str, simulator: Simulator, gateway: Gateway
) -> None:
    stale = stored_component_token()
    simulator.issue_component_token()  # someone else fetched one: ours has five minutes left ...
    simulator.advance_clock(301)  # ... and they are over, so WeChat answers 42001
    answer = login(gateway, mini, {"code": simulator.wx_login(mini)})
    assert answer.status_code == 200, answer.text
    assert calls(simulator, "api_component_token") == 2
    fresh = stored_component_token()
    assert fresh != stale
    assert jscode2session_tokens(simulator) == [stale, fresh]


def test_a_code_used_twice_is_a_400(
    mini: str, simulator: Simulator, gateway: Gateway, service: Resources
) -> None:
    code = simulator.wx_login(mini)
    assert login(gateway, mini, {"code": code}).status_code == 200
    again = login(gateway, mini, {"code": code})
    assert (again.status_code, again.json()) == (400, {"error": "code already used (WeChat errcode 40163)"})
    assert len(session_items(service)) == 1


def test_the_same_code_sent_twice_at_once_makes_one_session(
    mini: str, simulator: Simulator, gateway: Gateway, service: Resources
) -> None:
    code = simulator.wx_login(mini)
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(lambda _: login(gateway, mini, {"code": code}), range(2)))
    assert sorted(a.status_code for a in answers) == [200, 400]
    assert len(session_items(service)) == 1


def test_an_invalid_code_is_a_400(
    mini: str, simulator: Simulator, gateway: Gateway, service: Resources
) -> None:
    answer = login(gateway, mini, {"code": "0" * 32})
    assert (answer.status_code, answer.json()) == (400, {"error": "invalid code (WeChat errcode 40029)"})
    other = authorize(simulator, "mini_program")
    foreign = login(gateway, mini, {"code": simulator.wx_login(other)})  # another app's code
    assert (foreign.status_code, foreign.json()) == (400, {"error": "invalid code (WeChat errcode 40029)"})
    assert session_items(service) == []


def test_an_expired_code_is_a_400(mini: str, simulator: Simulator, gateway: Gateway) -> None:
    code = simulator.wx_login(mini)
    simulator.advance_clock(301)
    answer = login(gateway, mini, {"code": code})
    assert (answer.status_code, answer.json()) == (400, {"error": "invalid code (WeChat errcode 40029)"})


def test_an_account_that_never_authorized_is_refused_without_calling_wechat(
    mini: str, simulator: Simulator, gateway: Gateway, service: Resources
) -> None:
    stranger = str(simulator.add_account("mini_program")["appid"])  # exists at WeChat, never authorized us
    before = service.snapshot()
    answer = login(gateway, stranger, {"code": simulator.wx_login(stranger)})
    assert (answer.status_code, answer.json()) == (
        404,
        {"error": "this Mini Program has not authorized the platform"},
    )
    assert calls(simulator, "jscode2session") == 0
    assert service.snapshot() == before


def test_a_revoked_account_is_refused_without_calling_wechat(
    mini: str, simulator: Simulator, gateway: Gateway, service: Resources
) -> None:
    simulator.callback_url = gateway.url + EVENTS_PATH
    simulator.revoke(mini, push=True)  # the unauthorized push reaches our callback
    answer = login(gateway, mini, {"code": "c" * 32})
    assert (answer.status_code, answer.json()) == (
        403,
        {"error": "this Mini Program's authorization is not active"},
    )
    assert calls(simulator, "jscode2session") == 0
    assert session_items(service) == []


def test_an_official_account_is_refused_without_calling_wechat(
    mini: str, simulator: Simulator, gateway: Gateway, service: Resources
) -> None:
    official = authorize(simulator, "official_account")
    answer = login(gateway, official, {"code": "a" * 32})
    assert (answer.status_code, answer.json()) == (400, {"error": "this account is not a Mini Program"})
    assert calls(simulator, "jscode2session") == 0
    assert session_items(service) == []


def test_an_official_account_whose_kind_is_unknown_is_refused_as_wechat_says(
    service: Resources, simulator: Simulator, gateway: Gateway
) -> None:
    # api_get_authorizer_info failed when it authorized (as after a recovery from the authorizer
    # list, the account's kind is not stored): WeChat's 40013 says it is no Mini Program.
    give_ticket(simulator)
    add_fault(simulator, api="api_get_authorizer_info", errcode=61003)
    official = authorize(simulator, "official_account")
    item = runtime.store().authorizers.get(official)
    assert item is not None
    assert "info" not in item
    answer = login(gateway, official, {"code": "a" * 32})
    assert (answer.status_code, answer.json()) == (400, {"error": "this account is not a Mini Program"})
    assert calls(simulator, "jscode2session") == 1
    assert session_items(service) == []


def test_wechat_errors_map_to_clear_answers(
    mini: str, simulator: Simulator, gateway: Gateway, service: Resources
) -> None:
    simulator.set_jscode_limit(mini, 1)
    assert login(gateway, mini, {"code": simulator.wx_login(mini)}).status_code == 200
    limited = login(gateway, mini, {"code": simulator.wx_login(mini)})
    assert limited.status_code == 429
    assert limited.json() == {
        "error": "too many requests for this account, try again in a minute (WeChat errcode 45011)"
    }
    assert calls(simulator, "jscode2session") == 2  # a rate limit is not retried
    simulator.set_jscode_limit(mini, None)
    simulator.revoke(mini, push=False)  # the unauthorized push was lost: WeChat says 61003
    refused = login(gateway, mini, {"code": "b" * 32})
    assert refused.status_code == 403
    assert refused.json() == {"error": "the account has not authorized this platform (WeChat errcode 61003)"}
    assert calls(simulator, "jscode2session") == 3
    assert len(session_items(service)) == 1


@pytest.mark.parametrize(
    "fault",
    [{"errcode": -1}, {"http_status": 500}, {"http_status": 503}, {"delay": 1.5}],
    ids=["busy", "http-500", "http-503", "timeout"],
)
def test_transient_failures_are_retried_then_answered_502(
    mini: str, simulator: Simulator, gateway: Gateway, service: Resources, fault: dict[str, Any]
) -> None:
    assert runtime.settings().wechat_read_timeout_seconds < fault.get("delay", 60)
    add_fault(simulator, api="jscode2session", times=1, **fault)
    recovered = login(gateway, mini, {"code": simulator.wx_login(mini)})
    assert recovered.status_code == 200, recovered.text
    assert calls(simulator, "jscode2session") == 2
    attempts = runtime.settings().wechat_max_attempts
    assert attempts > 1
    add_fault(simulator, api="jscode2session", times=attempts, **fault)
    failed = login(gateway, mini, {"code": simulator.wx_login(mini)})
    assert failed.status_code == 502
    assert set(failed.json()) == {"error"}
    assert calls(simulator, "jscode2session") == 2 + attempts
    assert len(session_items(service)) == 1


def test_a_code_wechat_used_before_its_answer_was_lost_asks_for_a_new_code(
    mini: str, simulator: Simulator, gateway: Gateway, service: Resources
) -> None:
    # WeChat exchanged the code, then the answer was lost (502): the retry finds the code used.
    add_fault(simulator, api="jscode2session", times=1, after_effect=True)
    answer = login(gateway, mini, {"code": simulator.wx_login(mini)})
    assert (answer.status_code, answer.json()) == (400, {"error": "code already used (WeChat errcode 40163)"})
    assert calls(simulator, "jscode2session") == 2
    assert session_items(service) == []
    assert login(gateway, mini, {"code": simulator.wx_login(mini)}).status_code == 200


# --- bad input ----------------------------------------------------------------------------------

JSON = {"Content-Type": "application/json"}

# (name, requests.post keyword arguments, status, reason); each case is a request, not a test of
# its own, so the table (and the simulator) is set up once per route.
BAD_BODIES: list[tuple[str, dict[str, Any], int, str]] = [
    ("no body, no Content-Type", {}, 415, "Content-Type must be application/json"),
    ("missing body", {"headers": JSON}, 400, "body is not valid JSON"),
    ("invalid JSON", {"data": b"{nope", "headers": JSON}, 400, "body is not valid JSON"),
    ("not UTF-8", {"data": b"\xff\xfe", "headers": JSON}, 400, "body is not valid JSON"),
    ("JSON array", {"json": ["code"]}, 400, "body must be a JSON object"),
    ("JSON null", {"data": b"null", "headers": JSON}, 400, "body must be a JSON object"),
    ("JSON string", {"data": b'"code"', "headers": JSON}, 400, "body must be a JSON object"),
    (
        "text/plain",
        {"data": b'{"code":"x"}', "headers": {"Content-Type": "text/plain"}},
        415,
        "Content-Type must be application/json",
    ),
    (
        "form",
        {"data": b"code=abcdefgh", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
        415,
        "Content-Type must be application/json",
    ),
    (
        "oversized",
        {"data": json.dumps({"code": "a" * 20_000}).encode(), "headers": JSON},
        413,
        "body over 16384 bytes",
    ),
]

BAD_CODES: list[tuple[Any, str]] = [
    ({}, "missing code"),
    ({"js_code": "a" * 32}, "missing code"),
    ({"code": ""}, "missing code"),
    ({"code": None}, "missing code"),
    ({"code": 12345678}, "missing code"),
    ({"code": ["a" * 32]}, "missing code"),
    ({"code": "../../etc"}, "code must be the string wx.login gave"),
    ({"code": "a" * 32 + "&appid=wx0000000000000000"}, "code must be the string wx.login gave"),
    ({"code": "a" * 200}, "code must be the string wx.login gave"),
]

MALFORMED_APPIDS = [
    "wx-not-an-appid",
    "wx" + "a" * 15,
    "wx" + "a" * 17,
    "WX" + "a" * 16,
    "gh_" + "a" * 16,
    "wx%E4%B8%AD" + "a" * 15,  # a Chinese character, percent-encoded in the path
]


def _refusals(
    cases: Iterable[tuple[str, Callable[[], requests.Response], int, str]],
) -> list[tuple[str, int, Any]]:
    """The cases whose answer is not (status, {"error": reason}): (name, status, body)."""
    wrong = []
    for name, send, status, reason in cases:
        answer = send()
        body = (
            answer.json() if answer.headers.get("Content-Type", "").startswith("application/json") else None
        )
        if (answer.status_code, body) != (status, {"error": reason}):
            wrong.append((name, answer.status_code, body or answer.text))
    return wrong


@pytest.mark.parametrize("route", ["login", "decrypt"])
def test_bad_bodies_are_refused_and_change_nothing(
    mini: str, simulator: Simulator, gateway: Gateway, service: Resources, route: str
) -> None:
    url = f"{gateway.url}/wechat/miniprogram/{mini}/{route}"
    before = service.snapshot()
    cases = [
        (name, partial(requests.post, url, timeout=10, **kwargs), status, reason)
        for name, kwargs, status, reason in BAD_BODIES
    ]
    assert _refusals(cases) == []
    assert service.snapshot() == before
    assert calls(simulator, "jscode2session") == 0


def test_missing_or_malformed_codes_are_refused_and_change_nothing(
    mini: str, simulator: Simulator, gateway: Gateway, service: Resources
) -> None:
    before = service.snapshot()
    cases = [
        (json.dumps(body), partial(login, gateway, mini, body), 400, reason) for body, reason in BAD_CODES
    ]
    assert _refusals(cases) == []
    assert service.snapshot() == before
    assert calls(simulator, "jscode2session") == 0


@pytest.mark.parametrize("route", ["login", "decrypt"])
def test_malformed_appid_is_refused_and_changes_nothing(
    mini: str, simulator: Simulator, gateway: Gateway, service: Resources, route: str
) -> None:
    body = {"code": "a" * 32, "session_token": "A" * 43, "encryptedData": "AAAA", "iv": "AAAA"}
    before = service.snapshot()
    cases = [
        (
            appid,
            partial(
                requests.post, f"{gateway.url}/wechat/miniprogram/{appid}/{route}", json=body, timeout=10
            ),
            400,
            "appid must be wx + 16 characters",
        )
        for appid in MALFORMED_APPIDS
    ]
    assert _refusals(cases) == []
    assert service.snapshot() == before
    assert calls(simulator, "jscode2session") == 0


# --- CORS ---------------------------------------------------------------------------------------

ALLOWED = ("https://h5.example.com", "https://shop.example.com")


@pytest.fixture
def cors_gateway(service: Resources, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateway]:
    """The login function loaded fresh with ALLOWED_ORIGINS set (the resolver reads the settings at
    import);
    afterwards the module as it was, so later tests get the function without CORS."""
    name = "fn_" + FUNCTION.replace("/", "_")
    original = sys.modules.pop(name, None)
    monkeypatch.setenv("ALLOWED_ORIGINS", " , ".join(ALLOWED))
    runtime.reset()  # settings are read again, with the allowed origins
    gw = Gateway().start()
    try:
        yield gw
    finally:
        gw.stop()
        monkeypatch.delenv("ALLOWED_ORIGINS")
        runtime.reset()
        if original is not None:
            sys.modules[name] = original
        else:
            sys.modules.pop(name, None)


def test_cors_for_allowed_origins_only(mini: str, simulator: Simulator, cors_gateway: Gateway) -> None:
    url = f"{cors_gateway.url}/wechat/miniprogram/{mini}/login"
    for origin in ALLOWED:
        allowed = requests.post(
            url, json={"code": simulator.wx_login(mini)}, headers={"Origin": origin}, timeout=10
        )
        assert allowed.status_code == 200, allowed.text
        assert allowed.headers["Access-Control-Allow-Origin"] == origin
    other = requests.post(
        url, json={"code": simulator.wx_login(mini)}, headers={"Origin": "https://evil.example"}, timeout=10
    )
    assert other.status_code == 200
    assert "Access-Control-Allow-Origin" not in other.headers
    # Refusals carry the header too, or the page could not read the reason.
    refused = requests.post(url, json={}, headers={"Origin": ALLOWED[0]}, timeout=10)
    assert refused.status_code == 400
    assert refused.headers["Access-Control-Allow-Origin"] == ALLOWED[0]


@pytest.mark.parametrize("route", ["login", "decrypt"])
def test_cors_preflight(mini: str, cors_gateway: Gateway, route: str) -> None:
    url = f"{cors_gateway.url}/wechat/miniprogram/{mini}/{route}"
    preflight = requests.options(
        url,
        headers={
            "Origin": "https://h5.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,authorization",
        },
        timeout=10,
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://h5.example.com"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    allowed_headers = preflight.headers["Access-Control-Allow-Headers"].lower()
    assert "content-type" in allowed_headers
    assert "authorization" in allowed_headers
    foreign = requests.options(
        url,
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert "Access-Control-Allow-Origin" not in foreign.headers


def test_no_cors_headers_without_allowed_origins(mini: str, simulator: Simulator, gateway: Gateway) -> None:
    answer = login(
        gateway, mini, {"code": simulator.wx_login(mini)}, headers={"Origin": "https://h5.example.com"}
    )
    assert answer.status_code == 200
    assert not [h for h in answer.headers if h.lower().startswith("access-control-")]


# --- user data ----------------------------------------------------------------------------------


@pytest.fixture
def session(mini: str, simulator: Simulator, gateway: Gateway) -> dict[str, Any]:
    answer = login(gateway, mini, {"code": simulator.wx_login(mini)})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_encrypted_phone_number_decrypts_through_the_session(
    mini: str, simulator: Simulator, gateway: Gateway, session: dict[str, Any]
) -> None:
    payload = simulator.user_data("phone", openid=session["openid"], appid=mini)
    answer = decrypt(gateway, mini, session["session_token"], payload)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"data": payload["plain"]}
    data = answer.json()["data"]
    assert data["purePhoneNumber"]
    assert data["phoneNumber"] == data["purePhoneNumber"]
    assert data["countryCode"] == "86"
    assert data["watermark"]["appid"] == mini
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
    assert in_body.status_code == 200, in_body.text
    assert in_body.json() == {"data": payload["plain"]}
    info = simulator.user_data("userinfo", openid=session["openid"], appid=mini)
    user_info = decrypt(gateway, mini, session["session_token"], info)
    assert user_info.json() == {"data": info["plain"]}
    assert user_info.json()["data"]["openId"] == session["openid"]


def _tampered(payload: dict[str, Any]) -> dict[str, Any]:
    raw = bytearray(base64.b64decode(payload["encryptedData"]))
    raw[-1] ^= 0x01  # garbles the last block: its padding and the JSON's end
    return payload | {"encryptedData": base64.b64encode(bytes(raw)).decode()}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


BAD_USER_DATA: list[Any] = [
    pytest.param(
        lambda p: p | {"iv": _b64(b"short")}, "encryptedData or iv has the wrong length", id="short-iv"
    ),
    pytest.param(
        lambda p: p | {"encryptedData": _b64(base64.b64decode(p["encryptedData"])[:-1])},
        "encryptedData or iv has the wrong length",
        id="truncated",
    ),
    pytest.param(
        lambda p: p | {"encryptedData": "***"}, "encryptedData is not valid base64", id="bad-base64"
    ),
    pytest.param(lambda p: p | {"iv": p["iv"][:-2] + "!!"}, "iv is not valid base64", id="bad-base64-iv"),
    pytest.param(lambda p: p | {"iv": ""}, "missing iv", id="missing-iv"),
    pytest.param(lambda p: p | {"encryptedData": None}, "missing encryptedData", id="missing-data"),
    pytest.param(lambda p: p | {"encryptedData": 12}, "missing encryptedData", id="number-data"),
    pytest.param(_tampered, "cannot decrypt encryptedData with this session", id="tampered"),
    pytest.param(
        lambda p: p | {"iv": _b64(bytes(16))}, "cannot decrypt encryptedData with this session", id="wrong-iv"
    ),
]


@pytest.mark.parametrize(("change", "reason"), BAD_USER_DATA)
def test_bad_user_data_is_refused_and_changes_nothing(
    mini: str,
    simulator: Simulator,
    gateway: Gateway,
    service: Resources,
    session: dict[str, Any],
    change: Callable[[dict[str, Any]], dict[str, Any]],
    reason: str,
) -> None:
    payload = change(simulator.user_data("phone", openid=session["openid"], appid=mini))
    before = service.snapshot()
    answer = decrypt(gateway, mini, session["session_token"], payload)
    assert (answer.status_code, answer.json()) == (400, {"error": reason})
    assert service.snapshot() == before


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


@pytest.mark.parametrize(
    ("moved", "reason"),
    [(3601, "watermark timestamp is too old"), (-3601, "watermark timestamp is in the future")],
    ids=["old", "future"],
)
def test_stale_watermark_is_refused(
    mini: str,
    simulator: Simulator,
    gateway: Gateway,
    session: dict[str, Any],
    fixed_clock: FixedClock,
    moved: int,
    reason: str,
) -> None:
    payload = simulator.user_data("phone", openid=session["openid"], appid=mini)
    step = 1 if moved > 0 else -1
    fixed_clock.advance(moved - 2 * step)  # just inside the hour: accepted
    assert decrypt(gateway, mini, session["session_token"], payload).status_code == 200
    fixed_clock.advance(4 * step)
    answer = decrypt(gateway, mini, session["session_token"], payload)
    assert (answer.status_code, answer.json()) == (400, {"error": reason})


def _sealed(simulator: Simulator, plain: Any) -> dict[str, Any]:
    """User data sealed with the session's real key, with content WeChat would not send."""
    (issued,) = simulator.session_keys()
    encrypted, iv = encrypt_user_data(issued["session_key"], plain)
    return {"encryptedData": encrypted, "iv": iv}


@pytest.mark.parametrize(
    ("plain", "status", "reason"),
    [
        ({"purePhoneNumber": "1"}, 403, "watermark appid does not match this Mini Program"),
        ({"watermark": "not-a-map"}, 403, "watermark appid does not match this Mini Program"),
        ({"watermark": ["x"]}, 403, "watermark appid does not match this Mini Program"),
        ({"watermark": {"appid": "{mini}"}}, 400, "watermark has no timestamp"),
        ({"watermark": {"appid": "{mini}", "timestamp": "soon"}}, 400, "watermark has no timestamp"),
        ({"watermark": {"appid": "{mini}", "timestamp": "NaN"}}, 400, "watermark has no timestamp"),
        ({"watermark": {"appid": "{mini}", "timestamp": float("nan")}}, 400, "watermark has no timestamp"),
        ({"watermark": {"appid": "{mini}", "timestamp": float("inf")}}, 400, "watermark has no timestamp"),
        ({"watermark": {"appid": "{mini}", "timestamp": {"t": 1}}}, 400, "watermark has no timestamp"),
        ({"watermark": {"appid": "{mini}", "timestamp": True}}, 400, "watermark has no timestamp"),
        (["a list"], 400, "decrypted data is not an object"),
    ],
    ids=[
        "no-watermark",
        "watermark-string",
        "watermark-list",
        "no-timestamp",
        "word",
        "nan",
        "nan-number",
        "infinity",
        "map",
        "bool",
        "list",
    ],
)
def test_odd_decrypted_content_is_refused(
    mini: str,
    simulator: Simulator,
    gateway: Gateway,
    session: dict[str, Any],
    plain: Any,
    status: int,
    reason: str,
) -> None:
    plain = json.loads(json.dumps(plain).replace("{mini}", mini))
    answer = decrypt(gateway, mini, session["session_token"], _sealed(simulator, plain))
    assert (answer.status_code, answer.json()) == (status, {"error": reason})


def test_a_revocation_ends_the_sessions_made_before_it(
    mini: str, simulator: Simulator, gateway: Gateway, session: dict[str, Any], fixed_clock: FixedClock
) -> None:
    payload = simulator.user_data("phone", openid=session["openid"], appid=mini)
    assert decrypt(gateway, mini, session["session_token"], payload).status_code == 200
    simulator.callback_url = gateway.url + EVENTS_PATH
    simulator.revoke(mini, push=True)
    revoked = decrypt(gateway, mini, session["session_token"], payload)
    assert (revoked.status_code, revoked.json()) == (
        403,
        {"error": "this Mini Program's authorization is not active"},
    )
    # Authorized again two seconds later (on both clocks): the old session stays ended, a new
    # login works.
    simulator.advance_clock(2)
    fixed_clock.value = simulator.state.now()
    simulator.query_auth_code(mini, push=True)
    ended = decrypt(gateway, mini, session["session_token"], payload)
    assert (ended.status_code, ended.json()) == (
        401,
        {"error": "session ended: the Mini Program's authorization was revoked"},
    )
    fresh = login(gateway, mini, {"code": simulator.wx_login(mini)})
    assert fresh.status_code == 200, fresh.text
    new_payload = simulator.user_data("phone", openid=fresh.json()["openid"], appid=mini)
    assert decrypt(gateway, mini, fresh.json()["session_token"], new_payload).status_code == 200


def test_unknown_or_foreign_sessions_are_refused(
    mini: str, simulator: Simulator, gateway: Gateway, session: dict[str, Any]
) -> None:
    payload = simulator.user_data("phone", openid=session["openid"], appid=mini)
    unknown = decrypt(gateway, mini, "A" * 43, payload)
    assert (unknown.status_code, unknown.json()) == (401, {"error": "unknown or expired session"})
    missing = requests.post(
        f"{gateway.url}/wechat/miniprogram/{mini}/decrypt",
        json={"encryptedData": payload["encryptedData"], "iv": payload["iv"]},
        timeout=10,
    )
    assert (missing.status_code, missing.json()) == (401, {"error": "unknown or expired session"})
    malformed = decrypt(gateway, mini, "not a token!", payload)
    assert (malformed.status_code, malformed.json()) == (401, {"error": "unknown or expired session"})
    # The hash the table is keyed by is not a token.
    digest = hashlib.sha256(session["session_token"].encode()).hexdigest()
    by_hash = decrypt(gateway, mini, digest, payload)
    assert (by_hash.status_code, by_hash.json()) == (401, {"error": "unknown or expired session"})
    other = authorize(simulator, "mini_program")
    foreign = decrypt(gateway, other, session["session_token"], payload)
    assert (foreign.status_code, foreign.json()) == (
        403,
        {"error": "session belongs to another Mini Program"},
    )


def test_a_session_ends_with_its_ttl(
    mini: str, simulator: Simulator, gateway: Gateway, fixed_clock: FixedClock
) -> None:
    answer = login(gateway, mini, {"code": simulator.wx_login(mini)})
    assert answer.status_code == 200, answer.text
    token = answer.json()["session_token"]
    fixed_clock.advance(SESSION_TTL_SECONDS + 1)  # DynamoDB's TTL deletion lags; the item is still there
    payload = simulator.user_data("phone", openid=answer.json()["openid"], appid=mini)
    late = decrypt(gateway, mini, token, payload)
    assert (late.status_code, late.json()) == (401, {"error": "unknown or expired session"})


def test_session_key_is_stored_but_never_returned(
    mini: str, simulator: Simulator, gateway: Gateway, service: Resources, session: dict[str, Any]
) -> None:
    (issued,) = simulator.session_keys()
    item = runtime.store().table.get(keys.session_sk(session["session_token"]))
    assert item is not None
    assert item["session_key"] == issued["session_key"]
    assert issued["session_key"] not in json.dumps(session)


# --- secrecy ------------------------------------------------------------------------------------


def _key_forms(session_key: str) -> set[str]:
    """Every way a session_key could show up in text: as issued, unpadded, URL-safe, JSON-escaped,
    URL-quoted, and its 16 bytes in hex."""
    raw = base64.b64decode(session_key)
    forms = {
        session_key,
        session_key.rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        session_key.replace("/", "\\/"),
        quote(session_key, safe=""),
        raw.hex(),
        raw.hex().upper(),
    }
    return {f for f in forms if len(f) >= 16}


@pytest.fixture
def function(service: Resources) -> ModuleType:
    # Loaded before ``logs``: the first Powertools logger of the process adds a filter to every
    # handler on the root logger, which would blind a capture installed before it.
    return load_function(FUNCTION)


@pytest.fixture
def debug_logs(function: ModuleType) -> Iterator[LogCapture]:
    """``logs``, with the service's loggers at DEBUG (as with POWERTOOLS_LOG_LEVEL=DEBUG)."""
    capture = LogCapture()
    ours = [
        logger
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger) and name.startswith("wechat-component")
    ]
    levels = [logger.level for logger in ours]
    for logger in ours:
        logger.setLevel(logging.DEBUG)
    yield capture
    for logger, level in zip(ours, levels, strict=True):
        logger.setLevel(level)
    capture.close()


@contextlib.contextmanager
def powertools_to_stdout() -> Iterator[None]:
    """Powertools' handler writing to this test phase's stdout, as Lambda's stdout would get it.

    Powertools binds its handler to ``sys.stdout`` as it is when the first function is imported;
    under pytest that is a capture file of some earlier test phase, closed since (capfd opens a new
    one for each phase), so without this its lines would be lost.
    """
    handler = getattr(logging.getLogger("wechat-component"), "powertools_handler", None)
    assert isinstance(handler, logging.StreamHandler)
    assert handler.lock is not None
    with handler.lock:  # not setStream: it flushes the old stream, which may be closed
        stream, handler.stream = handler.stream, sys.stdout
    try:
        yield
    finally:
        with handler.lock:
            handler.stream = stream


def _every_path(
    simulator: Simulator, gateway: Gateway, keep: Callable[[requests.Response], requests.Response]
) -> str:
    """Login and user data through every path: success, WeChat's refusals, retries, lost answers,
    user data good and bad. Returns the first session's token."""
    give_ticket(simulator)
    mini = authorize(simulator, "mini_program", unionid_bound=True)
    ok = keep(login(gateway, mini, {"code": simulator.wx_login(mini)}))
    assert ok.status_code == 200
    code = simulator.wx_login(mini)
    assert keep(login(gateway, mini, {"code": code})).status_code == 200
    assert keep(login(gateway, mini, {"code": code})).status_code == 400
    add_fault(simulator, api="jscode2session", times=1, errcode=-1)
    assert keep(login(gateway, mini, {"code": simulator.wx_login(mini)})).status_code == 200
    add_fault(simulator, api="jscode2session", times=1, after_effect=True)
    assert keep(login(gateway, mini, {"code": simulator.wx_login(mini)})).status_code == 400
    add_fault(simulator, api="jscode2session", times=1, after_effect=True, errcode=-1)
    assert keep(login(gateway, mini, {"code": simulator.wx_login(mini)})).status_code == 400
    token: str = ok.json()["session_token"]
    first_key = simulator.session_keys()[0]["session_key"]  # the session of ``ok``
    for kind in ("phone", "userinfo"):
        payload = simulator.user_data(kind, session_key=first_key)
        assert keep(decrypt(gateway, mini, token, payload)).status_code == 200
        assert keep(decrypt(gateway, mini, token, _tampered(payload))).status_code == 400
        assert keep(decrypt(gateway, mini, "A" * 43, payload)).status_code == 401
    forged = simulator.user_data("phone", session_key=first_key, watermark_appid="wx" + "e" * 16)
    assert keep(decrypt(gateway, mini, token, forged)).status_code == 403
    return token


def test_no_session_key_reaches_a_client_a_log_or_a_trace(
    function: ModuleType,
    debug_logs: LogCapture,
    simulator: Simulator,
    gateway: Gateway,
    service: Resources,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    traced: list[str] = []  # what the tracer would put into X-Ray as the handler's response
    real = Tracer._add_response_as_metadata

    def record(
        self: Tracer,
        method_name: Any = None,
        data: Any = None,
        subsegment: Any = None,
        capture_response: Any = None,
    ) -> None:
        traced.append(repr(data) if capture_response else "")
        real(self, method_name, data, subsegment, capture_response)

    monkeypatch.setattr(Tracer, "_add_response_as_metadata", record)
    answers: list[requests.Response] = []

    def keep(response: requests.Response) -> requests.Response:
        answers.append(response)
        return response

    with powertools_to_stdout():
        token = _every_path(simulator, gateway, keep)
        # The captures are live: a debug line from the service and one from the handler show up.
        miniprogram.logger.debug("canary-core")
        function.logger.debug("canary-handler")
    out, err = capfd.readouterr()
    sys.stdout.write(out)
    sys.stderr.write(err)
    for canary in ("canary-core", "canary-handler"):
        assert canary in debug_logs.text
        assert canary in out
    assert len(traced) == len(answers)

    issued = [k["session_key"] for k in simulator.session_keys()]
    assert len(issued) >= 5
    haystack = "\n".join(
        [
            out,
            err,
            debug_logs.text,
            *traced,
            *gateway.answers,
            *(f"{a.status_code} {dict(a.headers)} {a.text}" for a in answers),
        ]
    )
    leaked = sorted({form for key in issued for form in _key_forms(key) if form in haystack})
    assert not leaked, f"session_key forms leaked: {len(leaked)}"
    # Nor do our session tokens or the user's phone number go to X-Ray.
    assert not [t for t in traced if token in t or "purePhoneNumber" in t]
