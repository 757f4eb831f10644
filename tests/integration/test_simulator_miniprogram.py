"""Mini Program login through the simulator over real HTTP: wx.login codes, jscode2session with
the component token, its error codes and rate limit, the session_key record, and encrypted user
data decrypted here with pycryptodome the way the service must do it."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import requests
from Crypto.Cipher import AES
from Crypto.Util.Padding import unpad
from wechat_simulator import Platform, Simulator

pytestmark = pytest.mark.integration

JSCODE2SESSION = "/sns/component/jscode2session"


@pytest.fixture
def token(simulator: Simulator) -> str:
    return simulator.issue_component_token()


def mini_program(sim: Simulator, *, unionid_bound: bool = False, authorized: bool = True) -> str:
    appid = str(sim.add_account("mini_program", unionid_bound=unionid_bound)["appid"])
    if authorized:
        sim.query_auth_code(appid)
    return appid


def wx_login(sim: Simulator, appid: str, user: str | None = None) -> str:
    body = {"appid": appid} | ({"user": user} if user else {})
    response = requests.post(sim.url + "/__sim/wxlogin", json=body, timeout=10)
    assert response.status_code == 200
    return str(response.json()["code"])


def jscode2session(
    sim: Simulator, token: str | None, appid: str, js_code: str, **override: str
) -> dict[str, Any]:
    params = {
        "appid": appid,
        "js_code": js_code,
        "grant_type": "authorization_code",
        "component_appid": sim.state.platform.appid,
    }
    if token is not None:
        params["component_access_token"] = token
    response = requests.get(sim.url + JSCODE2SESSION, params=params | override, timeout=10)
    assert response.status_code == 200
    data: dict[str, Any] = response.json()
    return data


def decrypt(session_key: str, encrypted_data: str, iv: str) -> dict[str, Any]:
    """What the service does with encryptedData (AES-128-CBC, PKCS#7, key = base64(session_key))."""
    key = base64.b64decode(session_key)
    assert len(key) == 16
    cipher = AES.new(key, AES.MODE_CBC, base64.b64decode(iv))
    plain: dict[str, Any] = json.loads(unpad(cipher.decrypt(base64.b64decode(encrypted_data)), 16))
    return plain


def test_login_round_trip_and_encrypted_phone_number(simulator: Simulator, token: str) -> None:
    appid = mini_program(simulator)
    session = jscode2session(simulator, token, appid, wx_login(simulator, appid))
    assert set(session) == {"openid", "session_key"}  # no unionid: the account is not bound
    assert session["openid"].startswith("o")
    assert len(session["openid"]) == 28
    assert len(base64.b64decode(session["session_key"])) == 16

    now = int(simulator.state.now())
    data = requests.post(
        simulator.url + "/__sim/userdata",
        json={"session_key": session["session_key"], "kind": "phone"},
        timeout=10,
    ).json()
    plain = decrypt(session["session_key"], data["encryptedData"], data["iv"])
    assert plain == data["plain"]
    assert set(plain) == {"phoneNumber", "purePhoneNumber", "countryCode", "watermark"}
    assert plain["phoneNumber"] == plain["purePhoneNumber"]
    assert plain["countryCode"] == "86"
    assert plain["watermark"]["appid"] == appid
    assert now <= plain["watermark"]["timestamp"] <= now + 5
    assert len(base64.b64decode(data["iv"])) == 16

    recorded = requests.get(simulator.url + "/__sim/session_keys", timeout=10).json()
    assert [(r["session_key"], r["appid"], r["openid"]) for r in recorded] == [
        (session["session_key"], appid, session["openid"])
    ]
    assert requests.get(simulator.url + "/__sim/calls", timeout=10).json()["jscode2session"] == 1


def test_userinfo_with_unionid_by_openid_and_appid(simulator: Simulator, token: str) -> None:
    appid = mini_program(simulator, unionid_bound=True)
    session = jscode2session(simulator, token, appid, wx_login(simulator, appid, "alice"))
    assert session["unionid"].startswith("o")
    spec = {"openid": session["openid"], "appid": appid, "kind": "userinfo"}
    data = requests.post(simulator.url + "/__sim/userdata", json=spec, timeout=10).json()
    assert data["session_key"] == session["session_key"]
    plain = decrypt(session["session_key"], data["encryptedData"], data["iv"])
    assert plain["openId"] == session["openid"]
    assert plain["unionId"] == session["unionid"]
    for key in ("nickName", "gender", "city", "province", "country", "avatarUrl", "language"):
        assert key in plain
    assert plain["watermark"]["appid"] == appid

    forged = requests.post(
        simulator.url + "/__sim/userdata",
        json=spec | {"watermark_appid": "wx" + "8" * 16, "fields": {"nickName": "Mallory"}},
        timeout=10,
    ).json()
    forged_plain = decrypt(session["session_key"], forged["encryptedData"], forged["iv"])
    assert forged_plain["watermark"]["appid"] == "wx" + "8" * 16
    assert forged_plain["nickName"] == "Mallory"
    # A fresh iv each time: the same plaintext never gives the same ciphertext.
    assert forged["iv"] != data["iv"]


def test_openids_are_stable_per_user_and_mini_program_unionids_per_user(
    simulator: Simulator, token: str
) -> None:
    first = mini_program(simulator, unionid_bound=True)
    second = mini_program(simulator, unionid_bound=True)
    unbound = mini_program(simulator)

    def login(appid: str, user: str | None = None) -> dict[str, Any]:
        return jscode2session(simulator, token, appid, wx_login(simulator, appid, user))

    alice1, alice2, bob = login(first, "alice"), login(first, "alice"), login(first, "bob")
    assert alice1["openid"] == alice2["openid"] != bob["openid"]
    assert alice1["session_key"] != alice2["session_key"]  # every exchange issues a new session_key
    assert alice1["unionid"] == alice2["unionid"] != bob["unionid"]
    alice_elsewhere = login(second, "alice")
    assert alice_elsewhere["openid"] != alice1["openid"]
    assert alice_elsewhere["unionid"] == alice1["unionid"]
    assert "unionid" not in login(unbound, "alice")
    assert login(first)["openid"] == login(first)["openid"]  # the default user
    assert len(simulator.session_keys()) == 7


def test_codes_are_single_use_and_live_five_minutes(simulator: Simulator, token: str) -> None:
    appid = mini_program(simulator)
    code = wx_login(simulator, appid)
    assert "openid" in jscode2session(simulator, token, appid, code)
    used = jscode2session(simulator, token, appid, code)
    assert used["errcode"] == 40163
    assert used["errmsg"].startswith("code been used rid: ")
    late = simulator.wx_login(appid)
    simulator.advance_clock(301)
    assert jscode2session(simulator, token, appid, late)["errcode"] == 40029
    assert jscode2session(simulator, token, appid, "not-a-code")["errcode"] == 40029
    other = mini_program(simulator)
    assert jscode2session(simulator, token, appid, wx_login(simulator, other))["errcode"] == 40029


def test_jscode2session_refusals(simulator: Simulator, platform: Platform, token: str) -> None:
    appid = mini_program(simulator)
    code = wx_login(simulator, appid)
    assert jscode2session(simulator, None, appid, code)["errcode"] == 41001
    assert jscode2session(simulator, "sim_cat_unknown", appid, code)["errcode"] == 40001
    assert jscode2session(simulator, token, appid, code, component_appid="wx" + "9" * 16)["errcode"] == 61011
    assert jscode2session(simulator, token, appid, code, grant_type="client_credential")["errcode"] == 40002
    assert jscode2session(simulator, token, "wx" + "a" * 16, code)["errcode"] == 40013
    official = simulator.add_account("official_account")["appid"]
    simulator.query_auth_code(official)
    assert jscode2session(simulator, token, official, code)["errcode"] == 40013

    not_authorized = mini_program(simulator, authorized=False)
    refused = jscode2session(simulator, token, not_authorized, wx_login(simulator, not_authorized))
    assert refused["errcode"] == 61003
    assert refused["errmsg"].startswith("component is not authorized by this account rid: ")
    simulator.revoke(appid)
    assert jscode2session(simulator, token, appid, code)["errcode"] == 61003
    simulator.query_auth_code(appid)
    assert "openid" in jscode2session(simulator, token, appid, code)  # the refusals did not use it up

    newer = simulator.issue_component_token()
    simulator.advance_clock(301)
    assert jscode2session(simulator, token, appid, wx_login(simulator, appid))["errcode"] == 42001
    assert "openid" in jscode2session(simulator, newer, appid, wx_login(simulator, appid))


def test_per_minute_limit(simulator: Simulator, token: str) -> None:
    appid = mini_program(simulator)
    limit = requests.post(
        f"{simulator.url}/__sim/accounts/{appid}/jscode_limit", json={"per_minute": 2}, timeout=10
    )
    assert limit.json()["jscode_limit_per_minute"] == 2
    assert "openid" in jscode2session(simulator, token, appid, wx_login(simulator, appid))
    assert "openid" in jscode2session(simulator, token, appid, wx_login(simulator, appid))
    code = wx_login(simulator, appid)
    assert jscode2session(simulator, token, appid, code)["errcode"] == 45011
    simulator.advance_clock(60)
    assert "openid" in jscode2session(simulator, token, appid, code)  # the refused call left it usable
    simulator.set_jscode_limit(appid, None)
    answers = [jscode2session(simulator, token, appid, wx_login(simulator, appid)) for _ in range(5)]
    assert all("openid" in a for a in answers)


def test_control_refusals(simulator: Simulator) -> None:
    official = simulator.add_account("official_account")["appid"]
    mini = mini_program(simulator)
    post = simulator.url + "/__sim/"
    unknown = requests.post(post + "wxlogin", json={"appid": "wx" + "b" * 16}, timeout=10)
    assert (unknown.status_code, unknown.json()["error"]) == (404, "unknown_account")
    assert (
        requests.post(post + "wxlogin", json={"appid": official}, timeout=10).json()["error"]
        == "not_a_mini_program"
    )
    assert requests.post(post + "wxlogin", json={}, timeout=10).json()["error"] == "missing_parameter"
    assert (
        requests.post(post + "userdata", json={"kind": "phone"}, timeout=10).json()["error"]
        == "missing_parameter"
    )
    bad_kind = requests.post(post + "userdata", json={"kind": "email", "session_key": "x"}, timeout=10)
    assert bad_kind.json()["error"] == "invalid_kind"
    no_session = requests.post(post + "userdata", json={"kind": "phone", "session_key": "AAAA"}, timeout=10)
    assert (no_session.status_code, no_session.json()["error"]) == (404, "unknown_session_key")
    no_login = requests.post(
        post + "userdata", json={"kind": "phone", "openid": "o1", "appid": mini}, timeout=10
    )
    assert no_login.json()["error"] == "unknown_session"
    limit = requests.post(f"{post}accounts/{mini}/jscode_limit", json={"per_minute": -1}, timeout=10)
    assert limit.json()["error"] == "invalid_per_minute"
