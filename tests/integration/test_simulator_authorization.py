"""The simulator's authorization flow over real HTTP: api_create_preauthcode, the PC and mobile
authorization pages and their redirects, the pushes to the callback URL (authorized,
updateauthorized, unauthorized, a restarted ticket), api_query_auth and its single-use codes,
and the /__sim shortcuts (authorize, query_auth_code)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from wechat_core.protocol.crypto import MessageCrypto
from wechat_core.protocol.messages import parse_envelope, parse_xml
from wechat_simulator import Platform, SimError, Simulator
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from devtools.ports import free_port

pytestmark = pytest.mark.integration

COMPONENT = "/cgi-bin/component/"
PC_PAGE = "/cgi-bin/componentloginpage"
MOBILE_PAGE = "/wxaopen/safe/bindcomponent"
REDIRECT = "https://service.example/wechat/component/authorized?state=s1"


class CallbackRecorder:
    """The platform's authorization-event URL: checks the signature, decrypts, keeps the fields."""

    def __init__(
        self,
        platform: Platform,
        *,
        threaded: bool = True,
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.crypto = MessageCrypto(platform.token, platform.encoding_aes_key, platform.appid)
        self.events: list[dict[str, Any]] = []
        self.on_event = on_event
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=threaded)
        self.url = f"http://127.0.0.1:{self._server.server_port}/wechat/component/events"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        envelope = parse_envelope(request.get_data())
        args = request.args
        self.crypto.check_msg_signature(
            args["msg_signature"], args["timestamp"], args["nonce"], envelope.encrypt
        )
        fields = parse_xml(self.crypto.decrypt(envelope.encrypt))
        self.events.append(fields)
        if self.on_event is not None:
            self.on_event(fields)
        return Response("success")(environ, start_response)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def recorder(simulator: Simulator, platform: Platform) -> Iterator[CallbackRecorder]:
    callback = CallbackRecorder(platform)
    simulator.callback_url = callback.url
    yield callback
    callback.stop()


@pytest.fixture
def token(simulator: Simulator) -> str:
    return simulator.issue_component_token()


def call(sim: Simulator, api: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(
        sim.url + COMPONENT + api, params={"component_access_token": token}, json=body, timeout=10
    )
    assert response.status_code == 200
    data: dict[str, Any] = response.json()
    return data


def pre_auth_code(sim: Simulator, token: str) -> str:
    answer = call(sim, "api_create_preauthcode", token, {"component_appid": sim.state.platform.appid})
    return str(answer["pre_auth_code"])


def link(sim: Simulator, code: str, **extra: str) -> dict[str, str]:
    return {
        "component_appid": sim.state.platform.appid,
        "pre_auth_code": code,
        "redirect_uri": REDIRECT,
        "auth_type": "3",
        **extra,
    }


def open_page(sim: Simulator, params: dict[str, str], path: str = PC_PAGE) -> requests.Response:
    return requests.get(sim.url + path, params=params, allow_redirects=False, timeout=10)


def act(
    sim: Simulator, params: dict[str, str], appid: str, action: str = "approve", path: str = PC_PAGE
) -> requests.Response:
    return open_page(sim, params | {"sim_account": appid, "sim_action": action}, path)


def auth_code_of(location: str) -> str:
    return parse_qs(urlsplit(location).query)["auth_code"][0]


def query_auth(sim: Simulator, token: str, code: str) -> dict[str, Any]:
    return call(
        sim,
        "api_query_auth",
        token,
        {"component_appid": sim.state.platform.appid, "authorization_code": code},
    )


# --- pre-auth codes and the pages ------------------------------------------------------------


def test_create_preauthcode(simulator: Simulator, platform: Platform, token: str) -> None:
    answer = call(simulator, "api_create_preauthcode", token, {"component_appid": platform.appid})
    assert answer["expires_in"] == 1800
    assert answer["pre_auth_code"].startswith("preauthcode@@@")
    assert pre_auth_code(simulator, token) != answer["pre_auth_code"]
    assert (
        call(simulator, "api_create_preauthcode", token, {"component_appid": "wx" + "3" * 16})["errcode"]
        == 61011
    )
    assert requests.get(simulator.url + "/__sim/calls", timeout=10).json()["api_create_preauthcode"] == 3


def test_pc_page_shows_the_accounts_auth_type_allows(simulator: Simulator, token: str) -> None:
    official = simulator.add_account("official_account")["appid"]
    mini = simulator.add_account("mini_program")["appid"]
    code = pre_auth_code(simulator, token)
    both = open_page(simulator, link(simulator, code))
    assert both.status_code == 200
    assert both.headers["Content-Type"].startswith("text/html")
    assert f'data-appid="{official}"' in both.text
    assert f'data-appid="{mini}"' in both.text
    only_mini = open_page(simulator, link(simulator, code, auth_type="2"))
    assert f'data-appid="{mini}"' in only_mini.text
    assert f'data-appid="{official}"' not in only_mini.text
    restricted = open_page(simulator, link(simulator, code, auth_type="1", biz_appid=mini))
    assert f'data-appid="{mini}"' in restricted.text  # biz_appid wins over auth_type
    assert f'data-appid="{official}"' not in restricted.text
    assert requests.get(simulator.url + "/__sim/calls", timeout=10).json()["componentloginpage"] == 3


def test_approving_on_the_pc_page_redirects_with_a_code_and_pushes_authorized(
    simulator: Simulator, platform: Platform, token: str, recorder: CallbackRecorder
) -> None:
    appid = simulator.add_account("official_account")["appid"]
    code = pre_auth_code(simulator, token)
    now = int(simulator.state.now())
    response = act(simulator, link(simulator, code, category_id_list="1|15|33"), appid)
    assert response.status_code == 302
    assert response.headers["X-Sim-Push-Status"] == "200"
    location = response.headers["Location"]
    assert location.startswith(
        "https://service.example/wechat/component/authorized?state=s1&auth_code=queryauthcode@@@"
    )
    query = parse_qs(urlsplit(location).query)
    assert query["expires_in"] == ["3600"]
    assert query["state"] == ["s1"]
    auth_code = auth_code_of(location)

    # The push was delivered before the redirect was answered.
    assert len(recorder.events) == 1
    event = recorder.events[0]
    assert event["AppId"] == platform.appid
    assert event["InfoType"] == "authorized"
    assert event["AuthorizerAppid"] == appid
    assert event["AuthorizationCode"] == auth_code
    assert event["PreAuthCode"] == code
    assert now <= int(event["CreateTime"]) <= now + 5
    assert int(event["AuthorizationCodeExpiredTime"]) == int(event["CreateTime"]) + 3600

    info = query_auth(simulator, token, auth_code)["authorization_info"]
    assert info["authorizer_appid"] == appid
    assert info["expires_in"] == 7200
    assert info["func_info"] == [{"funcscope_category": {"id": i}} for i in (1, 15, 33)]
    account = simulator.account(appid)
    assert account["authorized"] is True
    assert account["func_info"] == [1, 15, 33]
    assert [t["value"] for t in account["refresh_tokens"]] == [info["authorizer_refresh_token"]]
    assert [t["value"] for t in account["access_tokens"]] == [info["authorizer_access_token"]]

    # The pre-auth code is single-use: the page refuses it now, for any account.
    again = act(simulator, link(simulator, code), simulator.add_account("official_account")["appid"])
    assert (again.status_code, again.headers["X-Sim-Error"]) == (400, "pre_auth_code_used")
    assert 'data-reason="pre_auth_code_used"' in again.text


def test_approving_on_the_mobile_page(simulator: Simulator, token: str) -> None:
    appid = simulator.add_account("mini_program")["appid"]
    code = pre_auth_code(simulator, token)
    mobile = link(simulator, code, action="bindcomponent", no_scan="1", auth_type="2")
    assert open_page(simulator, mobile, MOBILE_PAGE).status_code == 200
    without_no_scan = {k: v for k, v in mobile.items() if k != "no_scan"}
    assert open_page(simulator, without_no_scan, MOBILE_PAGE).headers["X-Sim-Error"] == "missing_no_scan"
    wrong_action = mobile | {"action": "bind"}
    assert open_page(simulator, wrong_action, MOBILE_PAGE).headers["X-Sim-Error"] == "invalid_action"
    response = act(simulator, mobile, appid, path=MOBILE_PAGE)
    assert response.status_code == 302
    assert "X-Sim-Push-Status" not in response.headers  # no callback URL configured
    assert (
        query_auth(simulator, token, auth_code_of(response.headers["Location"]))["authorization_info"][
            "authorizer_appid"
        ]
        == appid
    )
    assert requests.get(simulator.url + "/__sim/calls", timeout=10).json()["bindcomponent"] == 4


@pytest.mark.parametrize(
    ("case", "status", "reason"),
    [
        ("unknown pre_auth_code", 400, "invalid_pre_auth_code"),
        ("expired pre_auth_code", 400, "pre_auth_code_expired"),
        ("other component", 400, "invalid_component"),
        ("mini program on an official-account link", 400, "account_kind_not_allowed"),
        ("official account on a mini-program link", 400, "account_kind_not_allowed"),
        ("other account than biz_appid", 400, "account_not_allowed"),
        ("unknown biz_appid", 400, "invalid_biz_appid"),
        ("auth_type 4", 400, "invalid_auth_type"),
        ("relative redirect_uri", 400, "invalid_redirect_uri"),
        ("missing redirect_uri", 400, "missing_parameter"),
        ("bad category_id_list", 400, "invalid_category_id_list"),
        ("unknown account", 404, "unknown_account"),
        ("unknown sim_action", 400, "invalid_sim_action"),
    ],
)
def test_page_refusals(simulator: Simulator, token: str, case: str, status: int, reason: str) -> None:
    official = simulator.add_account("official_account")["appid"]
    mini = simulator.add_account("mini_program")["appid"]
    code = pre_auth_code(simulator, token)
    params, appid, action = link(simulator, code), mini, "approve"
    if case == "unknown pre_auth_code":
        params["pre_auth_code"] = "preauthcode@@@unknown"
    elif case == "expired pre_auth_code":
        simulator.advance_clock(1801)
    elif case == "other component":
        params["component_appid"] = "wx" + "4" * 16
    elif case == "mini program on an official-account link":
        params["auth_type"] = "1"
    elif case == "official account on a mini-program link":
        params["auth_type"], appid = "2", official
    elif case == "other account than biz_appid":
        params["biz_appid"] = official
    elif case == "unknown biz_appid":
        params["biz_appid"] = "wx" + "5" * 16
    elif case == "auth_type 4":
        params["auth_type"] = "4"
    elif case == "relative redirect_uri":
        params["redirect_uri"] = "/wechat/component/authorized"
    elif case == "missing redirect_uri":
        del params["redirect_uri"]
    elif case == "bad category_id_list":
        params["category_id_list"] = "1,2"
    elif case == "unknown account":
        appid = "wx" + "6" * 16
    elif case == "unknown sim_action":
        action = "maybe"
    response = act(simulator, params, appid, action)
    assert (response.status_code, response.headers["X-Sim-Error"]) == (status, reason)
    assert f'data-reason="{reason}"' in response.text
    assert simulator.account(mini)["authorized"] is False
    assert simulator.account(official)["authorized"] is False


def test_refusing_redirects_without_a_code_and_keeps_the_pre_auth_code(
    simulator: Simulator, token: str, recorder: CallbackRecorder
) -> None:
    appid = simulator.add_account("official_account")["appid"]
    code = pre_auth_code(simulator, token)
    refused = act(simulator, link(simulator, code), appid, "refuse")
    assert refused.status_code == 302
    assert refused.headers["Location"] == REDIRECT
    assert recorder.events == []
    assert simulator.account(appid)["authorized"] is False
    approved = act(simulator, link(simulator, code), appid)
    assert "auth_code" in parse_qs(urlsplit(approved.headers["Location"]).query)


# --- authorization codes ---------------------------------------------------------------------


def test_authorization_code_is_single_use_and_expires(simulator: Simulator, token: str) -> None:
    appid = simulator.add_account("official_account")["appid"]
    code = auth_code_of(simulator.approve(pre_auth_code(simulator, token), appid, redirect_uri=REDIRECT))
    assert query_auth(simulator, token, "queryauthcode@@@unknown")["errcode"] == 61009
    assert "authorization_info" in query_auth(simulator, token, code)
    reused = query_auth(simulator, token, code)
    assert reused["errcode"] == 40163
    assert reused["errmsg"].startswith("code been used rid: ")

    late = simulator.query_auth_code(appid)
    simulator.advance_clock(3601)
    expired = query_auth(simulator, token, late)
    assert expired["errcode"] == 61010
    assert requests.get(simulator.url + "/__sim/calls", timeout=10).json()["api_query_auth"] == 4


def test_reauthorization_pushes_updateauthorized_and_kills_the_old_refresh_token(
    simulator: Simulator, platform: Platform, token: str, recorder: CallbackRecorder
) -> None:
    appid = simulator.add_account("official_account")["appid"]
    first_code = auth_code_of(simulator.approve(pre_auth_code(simulator, token), appid))
    first = query_auth(simulator, token, first_code)["authorization_info"]["authorizer_refresh_token"]
    second_url = simulator.approve(pre_auth_code(simulator, token), appid)
    assert [e["InfoType"] for e in recorder.events] == ["authorized", "updateauthorized"]
    refresh = {
        "component_appid": platform.appid,
        "authorizer_appid": appid,
        "authorizer_refresh_token": first,
    }
    assert call(simulator, "api_authorizer_token", token, refresh)["errcode"] == 61023
    second = query_auth(simulator, token, auth_code_of(second_url))["authorization_info"][
        "authorizer_refresh_token"
    ]
    assert second != first
    listed = call(
        simulator,
        "api_get_authorizer_list",
        token,
        {"component_appid": platform.appid, "offset": 0, "count": 1},
    )
    assert listed["list"][0]["refresh_token"] == second


def test_python_approve_and_refuse_check_like_the_page(simulator: Simulator, token: str) -> None:
    official = simulator.add_account("official_account")["appid"]
    code = simulator.create_pre_auth_code()
    with pytest.raises(SimError) as refused:
        simulator.approve(code, official, auth_type=2)
    assert refused.value.reason == "account_kind_not_allowed"
    assert simulator.refuse(code, official, redirect_uri=REDIRECT) == REDIRECT
    url = simulator.approve(code, official, redirect_uri="https://a.example/done")
    assert url.startswith("https://a.example/done?auth_code=queryauthcode@@@")
    with pytest.raises(SimError) as used:
        simulator.approve(code, official)
    assert used.value.reason == "pre_auth_code_used"


# --- /__sim shortcuts ------------------------------------------------------------------------


def test_sim_authorize_route(simulator: Simulator, token: str, recorder: CallbackRecorder) -> None:
    appid = simulator.add_account("mini_program")["appid"]
    code = pre_auth_code(simulator, token)
    spec = {"pre_auth_code": code, "appid": appid, "redirect_uri": REDIRECT, "auth_type": 2}
    refused = requests.post(simulator.url + "/__sim/authorize", json=spec | {"action": "refuse"}, timeout=10)
    assert refused.json() == {"redirect": REDIRECT}
    approved = requests.post(
        simulator.url + "/__sim/authorize", json=spec | {"category_id_list": [18, 19]}, timeout=10
    ).json()
    assert approved["redirect"].startswith(REDIRECT + "&auth_code=queryauthcode@@@")
    assert approved["auth_code"] == auth_code_of(approved["redirect"])
    assert approved["info_type"] == "authorized"
    assert approved["push"]["status"] == 200
    assert recorder.events[0]["AuthorizationCode"] == approved["auth_code"]
    assert "<InfoType><![CDATA[authorized]]></InfoType>" in approved["event"]
    info = query_auth(simulator, token, approved["auth_code"])["authorization_info"]
    assert info["func_info"] == [{"funcscope_category": {"id": 18}}, {"funcscope_category": {"id": 19}}]
    again = requests.post(simulator.url + "/__sim/authorize", json=spec, timeout=10)
    assert (again.status_code, again.json()["error"]) == (400, "pre_auth_code_used")


def test_query_auth_code_route_gives_fresh_codes_without_reauthorizing(
    simulator: Simulator, platform: Platform, token: str, recorder: CallbackRecorder
) -> None:
    appid = simulator.add_account("official_account")["appid"]
    first = requests.post(simulator.url + "/__sim/query_auth_code", json={"appid": appid}, timeout=10).json()
    assert first["expires_in"] == 3600
    assert first["push"] is None
    assert recorder.events == []
    refresh_token = query_auth(simulator, token, first["authorization_code"])["authorization_info"][
        "authorizer_refresh_token"
    ]
    second = requests.post(
        simulator.url + "/__sim/query_auth_code", json={"appid": appid, "push": True}, timeout=10
    ).json()
    assert second["authorization_code"] != first["authorization_code"]
    assert second["push"]["status"] == 200
    event = recorder.events[0]
    assert (event["InfoType"], event["AuthorizationCode"]) == ("authorized", second["authorization_code"])
    assert "PreAuthCode" not in event  # like the full-network test's automatic authorization
    again = query_auth(simulator, token, second["authorization_code"])["authorization_info"]
    assert again["authorizer_refresh_token"] == refresh_token  # not a re-authorization
    missing = requests.post(
        simulator.url + "/__sim/query_auth_code", json={"appid": "wx" + "7" * 16}, timeout=10
    )
    assert missing.status_code == 404


# --- other pushes ----------------------------------------------------------------------------


def test_revocation_pushes_unauthorized(
    simulator: Simulator, platform: Platform, recorder: CallbackRecorder
) -> None:
    appid = simulator.add_account("official_account")["appid"]
    simulator.query_auth_code(appid)
    answer = requests.post(f"{simulator.url}/__sim/accounts/{appid}/revoke", timeout=10).json()
    assert answer["push"]["status"] == 200
    assert len(recorder.events) == 1
    event = recorder.events[0]
    assert set(event) == {"AppId", "CreateTime", "InfoType", "AuthorizerAppid"}
    assert (event["AppId"], event["InfoType"], event["AuthorizerAppid"]) == (
        platform.appid,
        "unauthorized",
        appid,
    )


def test_start_push_ticket_pushes_a_fresh_ticket_when_a_callback_is_configured(
    simulator: Simulator, platform: Platform, recorder: CallbackRecorder
) -> None:
    body = {"component_appid": platform.appid, "component_secret": platform.appsecret}
    url = simulator.url + COMPONENT + "api_start_push_ticket"
    assert requests.post(url, json=body, timeout=10).json() == {"errcode": 0, "errmsg": "ok"}
    assert simulator.wait_for_pushes(1)  # pushed in the background
    assert [e["InfoType"] for e in recorder.events] == ["component_verify_ticket"]
    ticket = recorder.events[0]["ComponentVerifyTicket"]
    assert ticket.startswith("ticket@@@")
    token = requests.post(
        simulator.url + COMPONENT + "api_component_token",
        json={
            "component_appid": platform.appid,
            "component_appsecret": platform.appsecret,
            "component_verify_ticket": ticket,
        },
        timeout=10,
    ).json()
    assert token["component_access_token"].startswith("sim_cat_")
    assert (
        requests.post(url, json=body | {"component_secret": "wrong"}, timeout=10).json()["errcode"] == 40125
    )
    assert len(simulator.state.tickets) == 1  # a refused call pushes no ticket


def test_start_push_ticket_called_by_a_one_at_a_time_callback_does_not_wait_for_itself(
    simulator: Simulator, platform: Platform
) -> None:
    """Like sam local: the callback handles one request at a time and, on an event, asks WeChat
    to push a ticket. The push must not need the callback to answer first."""
    body = {"component_appid": platform.appid, "component_secret": platform.appsecret}
    answers: list[dict[str, Any]] = []

    def on_event(fields: dict[str, Any]) -> None:
        if fields["InfoType"] == "unauthorized":
            url = simulator.url + COMPONENT + "api_start_push_ticket"
            answers.append(requests.post(url, json=body, timeout=10).json())

    callback = CallbackRecorder(platform, threaded=False, on_event=on_event)
    simulator.callback_url = callback.url
    try:
        appid = simulator.add_account("official_account")["appid"]
        simulator.query_auth_code(appid)
        revoked = simulator.revoke(appid)
        assert revoked["push"]["status"] == 200
        assert answers == [{"errcode": 0, "errmsg": "ok"}]
        assert simulator.wait_for_pushes(2)
        assert [e["InfoType"] for e in callback.events] == ["unauthorized", "component_verify_ticket"]
        assert "error" not in simulator.state.push_results[-1]
    finally:
        callback.stop()


def test_start_push_ticket_without_callback_pushes_nothing(simulator: Simulator, platform: Platform) -> None:
    body = {"component_appid": platform.appid, "component_secret": platform.appsecret}
    answer = requests.post(simulator.url + COMPONENT + "api_start_push_ticket", json=body, timeout=10).json()
    assert answer == {"errcode": 0, "errmsg": "ok"}
    assert simulator.state.push_results == []
    assert simulator.state.tickets == {}


def test_an_unreachable_callback_does_not_stop_the_redirect(simulator: Simulator, token: str) -> None:
    simulator.callback_url = f"http://127.0.0.1:{free_port()}/wechat/component/events"
    appid = simulator.add_account("official_account")["appid"]
    response = act(simulator, link(simulator, pre_auth_code(simulator, token)), appid)
    assert response.status_code == 302
    assert response.headers["X-Sim-Push-Status"] == "error"
    assert "auth_code" in parse_qs(urlsplit(response.headers["Location"]).query)
    assert simulator.state.push_results[-1]["error"] == "ConnectionError"


def test_callback_url_can_be_set_over_http(simulator: Simulator, recorder: CallbackRecorder) -> None:
    settings = requests.post(
        simulator.url + "/__sim/settings", json={"callback_url": None}, timeout=10
    ).json()
    assert settings["callback_url"] is None
    assert simulator.callback_url is None
    settings = requests.post(
        simulator.url + "/__sim/settings", json={"callback_url": recorder.url}, timeout=10
    ).json()
    assert settings["callback_url"] == recorder.url
    assert simulator.callback_url == recorder.url
