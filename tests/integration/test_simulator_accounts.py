"""The simulator's authorizer accounts and their credentials, over real HTTP.

api_authorizer_token (default and rotation, grace 0 and the default 300 s), the after-effect
fault, api_get_authorizer_info, api_get_authorizer_list paging, revocation, component-token
checks shared by every component API, and thread safety under 50 concurrent callers.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from wechat_simulator import Platform, SimError, Simulator

pytestmark = pytest.mark.integration

COMPONENT = "/cgi-bin/component/"


def call(
    sim: Simulator, api: str, token: str | None, body: dict[str, Any], param: str = "component_access_token"
) -> dict[str, Any]:
    params = {param: token} if token is not None else {}
    response = requests.post(sim.url + COMPONENT + api, params=params, json=body, timeout=10)
    assert response.status_code == 200
    data: dict[str, Any] = response.json()
    return data


def sim_post(sim: Simulator, path: str, body: dict[str, Any] | None = None) -> requests.Response:
    return requests.post(sim.url + path, json=body or {}, timeout=10)


def calls(sim: Simulator) -> dict[str, int]:
    data: dict[str, int] = requests.get(sim.url + "/__sim/calls", timeout=10).json()
    return data


def authorize(sim: Simulator, token: str, kind: str = "official_account") -> dict[str, Any]:
    """A new account, authorized and its code exchanged: the query_auth authorization_info."""
    appid = sim.add_account(kind)["appid"]
    code = sim.query_auth_code(appid)
    info: dict[str, Any] = call(
        sim,
        "api_query_auth",
        token,
        {"component_appid": sim.state.platform.appid, "authorization_code": code},
    )["authorization_info"]
    return info


def refresh(sim: Simulator, token: str, appid: str, refresh_token: str) -> dict[str, Any]:
    return call(
        sim,
        "api_authorizer_token",
        token,
        {
            "component_appid": sim.state.platform.appid,
            "authorizer_appid": appid,
            "authorizer_refresh_token": refresh_token,
        },
    )


@pytest.fixture
def token(simulator: Simulator) -> str:
    return simulator.issue_component_token()


# --- accounts --------------------------------------------------------------------------------


def test_accounts_are_created_random_and_shown_with_their_authorization(
    simulator: Simulator, platform: Platform
) -> None:
    created = sim_post(simulator, "/__sim/accounts", {"kind": "mini_program", "nick_name": "Shop"})
    assert created.status_code == 201
    account = created.json()
    assert re.fullmatch(r"wx[0-9a-f]{16}", account["appid"])
    assert re.fullmatch(r"gh_[0-9a-f]{12}", account["user_name"])
    assert (account["kind"], account["nick_name"], account["authorized"]) == ("mini_program", "Shop", False)
    assert account["refresh_tokens"] == account["access_tokens"] == []
    other = simulator.add_account("mini_program")
    assert other["appid"] != account["appid"]
    assert other["user_name"] != account["user_name"]

    shown = requests.get(f"{simulator.url}/__sim/accounts/{account['appid']}", timeout=10).json()
    assert shown == account
    assert requests.get(f"{simulator.url}/__sim/accounts/wx0000000000000000", timeout=10).status_code == 404
    listed = requests.get(f"{simulator.url}/__sim/accounts", timeout=10).json()
    assert [a["appid"] for a in listed] == [account["appid"], other["appid"]]


def test_account_creation_refusals(simulator: Simulator) -> None:
    fixed = sim_post(
        simulator, "/__sim/accounts", {"kind": "official_account", "appid": "wx570bc396a51b8ff8"}
    )
    assert fixed.json()["appid"] == "wx570bc396a51b8ff8"
    again = sim_post(
        simulator, "/__sim/accounts", {"kind": "official_account", "appid": "wx570bc396a51b8ff8"}
    )
    assert (again.status_code, again.json()["error"]) == (409, "account_exists")
    assert sim_post(simulator, "/__sim/accounts", {"kind": "bot"}).json()["error"] == "invalid_kind"
    assert sim_post(simulator, "/__sim/accounts", {}).json()["error"] == "missing_parameter"
    unknown = sim_post(simulator, "/__sim/accounts", {"kind": "official_account", "colour": "red"})
    assert (unknown.status_code, unknown.json()["error"]) == (400, "unknown_field")
    with pytest.raises(SimError) as refused:
        simulator.add_account("official_account", service_type="2")
    assert refused.value.reason == "invalid_field"


# --- component token checks, shared by every component API -----------------------------------

COMPONENT_APIS = [
    "api_create_preauthcode",
    "api_query_auth",
    "api_authorizer_token",
    "api_get_authorizer_info",
    "api_get_authorizer_list",
]


@pytest.mark.parametrize("api", COMPONENT_APIS)
def test_component_token_checks(simulator: Simulator, platform: Platform, api: str) -> None:
    body = {"component_appid": platform.appid, "offset": 0, "count": 10}
    first = simulator.issue_component_token()
    assert call(simulator, api, None, body)["errcode"] == 41001
    assert call(simulator, api, "sim_cat_" + "x" * 48, body)["errcode"] == 40001
    # Both spellings of the query parameter are accepted; either way the token is checked.
    for param in ("component_access_token", "access_token"):
        assert call(simulator, api, first, body, param).get("errcode") != 40001
    second = simulator.issue_component_token()
    simulator.advance_clock(299)
    assert call(simulator, api, first, body).get("errcode") not in (40001, 41001, 42001)  # in grace
    simulator.advance_clock(2)
    assert call(simulator, api, first, body)["errcode"] == 42001  # superseded, grace over
    assert call(simulator, api, second, body).get("errcode") not in (40001, 41001, 42001)
    simulator.advance_clock(7200)
    assert call(simulator, api, second, body)["errcode"] == 42001  # expired
    third = simulator.issue_component_token()
    assert call(simulator, api, third, body | {"component_appid": "wx" + "0" * 16})["errcode"] == 61011
    assert call(simulator, api, third, {k: v for k, v in body.items() if k != "component_appid"})[
        "errcode"
    ] == (41002)
    assert calls(simulator)[api] == 10


# --- api_authorizer_token --------------------------------------------------------------------


def test_refresh_keeps_refresh_token_and_supersedes_access_token_after_grace(
    simulator: Simulator, token: str
) -> None:
    info = authorize(simulator, token)
    appid, refresh_token = info["authorizer_appid"], info["authorizer_refresh_token"]
    assert refresh_token.startswith("refreshtoken@@@")
    assert info["authorizer_access_token"].startswith("sim_aat_")
    answer = refresh(simulator, token, appid, refresh_token)
    assert answer["authorizer_refresh_token"] == refresh_token
    assert answer["expires_in"] == 7200
    assert answer["authorizer_access_token"] != info["authorizer_access_token"]
    assert refresh(simulator, token, appid, refresh_token)["authorizer_refresh_token"] == refresh_token

    accepted = [t["value"] for t in simulator.account(appid)["access_tokens"]]
    assert info["authorizer_access_token"] in accepted  # superseded, still in its 5-minute grace
    simulator.advance_clock(301)
    view = simulator.account(appid)
    assert len(view["access_tokens"]) == 1
    assert [t["value"] for t in view["refresh_tokens"]] == [refresh_token]
    assert view["refresh_tokens"][0]["accepted_until"] is None


def test_rotation_with_grace_zero_kills_the_previous_refresh_token_at_once(
    simulator: Simulator, token: str
) -> None:
    info = authorize(simulator, token)
    appid, first = info["authorizer_appid"], info["authorizer_refresh_token"]
    rotation = sim_post(simulator, f"/__sim/accounts/{appid}/rotation", {"enabled": True, "grace_seconds": 0})
    assert rotation.json()["rotation"] == {"enabled": True, "grace_seconds": 0}
    second = refresh(simulator, token, appid, first)["authorizer_refresh_token"]
    assert second != first
    assert second.startswith("refreshtoken@@@")
    assert refresh(simulator, token, appid, first)["errcode"] == 61023
    third = refresh(simulator, token, appid, second)["authorizer_refresh_token"]
    assert third not in (first, second)
    assert [t["value"] for t in simulator.account(appid)["refresh_tokens"]] == [third]


def test_rotation_with_default_grace_accepts_the_previous_token_for_five_minutes(
    simulator: Simulator, token: str
) -> None:
    info = authorize(simulator, token)
    appid, first = info["authorizer_appid"], info["authorizer_refresh_token"]
    simulator.set_rotation(appid)
    second = refresh(simulator, token, appid, first)["authorizer_refresh_token"]
    assert second != first
    assert {t["value"] for t in simulator.account(appid)["refresh_tokens"]} == {first, second}
    simulator.advance_clock(299)
    third = refresh(simulator, token, appid, first)["authorizer_refresh_token"]  # still in grace
    assert third not in (first, second)
    simulator.advance_clock(2)
    assert refresh(simulator, token, appid, first)["errcode"] == 61023
    assert "errcode" not in refresh(simulator, token, appid, second)  # superseded 2 s ago only
    simulator.set_rotation(appid, enabled=False)
    view = simulator.account(appid)
    newest = view["refresh_tokens"][-1]["value"]
    assert refresh(simulator, token, appid, newest)["authorizer_refresh_token"] == newest


def test_refresh_token_refusals(simulator: Simulator, platform: Platform, token: str) -> None:
    mine = authorize(simulator, token)
    theirs = authorize(simulator, token)
    appid = mine["authorizer_appid"]
    assert refresh(simulator, token, appid, "refreshtoken@@@unknown")["errcode"] == 61023
    assert refresh(simulator, token, appid, theirs["authorizer_refresh_token"])["errcode"] == 61023
    assert refresh(simulator, token, "wx" + "1" * 16, mine["authorizer_refresh_token"])["errcode"] == 61023
    missing = call(
        simulator,
        "api_authorizer_token",
        token,
        {"component_appid": platform.appid, "authorizer_refresh_token": mine["authorizer_refresh_token"]},
    )
    assert missing["errcode"] == 41002
    assert missing["errmsg"].startswith("appid missing rid: ")


def test_after_effect_fault_rotates_then_answers_502(
    simulator: Simulator, platform: Platform, token: str
) -> None:
    info = authorize(simulator, token)
    appid, before = info["authorizer_appid"], info["authorizer_refresh_token"]
    simulator.set_rotation(appid, grace_seconds=0)
    fault = sim_post(simulator, "/__sim/faults", {"api": "api_authorizer_token", "after_effect": True})
    assert fault.json() == {"api": "api_authorizer_token", "times": 1, "after_effect": True}
    response = requests.post(
        simulator.url + COMPONENT + "api_authorizer_token",
        params={"component_access_token": token},
        json={
            "component_appid": platform.appid,
            "authorizer_appid": appid,
            "authorizer_refresh_token": before,
        },
        timeout=10,
    )
    assert response.status_code == 502
    # WeChat rotated, the caller never saw the new token: the old one is dead ...
    assert refresh(simulator, token, appid, before)["errcode"] == 61023
    # ... and api_get_authorizer_list is how it gets the current one back.
    listed = call(
        simulator,
        "api_get_authorizer_list",
        token,
        {"component_appid": platform.appid, "offset": 0, "count": 10},
    )
    current = listed["list"][0]["refresh_token"]
    assert current not in (before, "")
    assert current == simulator.account(appid)["refresh_tokens"][0]["value"]
    assert refresh(simulator, token, appid, current)["authorizer_refresh_token"] != current
    assert calls(simulator)["api_authorizer_token"] == 3


def test_after_effect_fault_can_drop_the_answer_or_answer_an_errcode(
    simulator: Simulator, platform: Platform, token: str
) -> None:
    info = authorize(simulator, token)
    appid, before = info["authorizer_appid"], info["authorizer_refresh_token"]
    simulator.set_rotation(appid, grace_seconds=0)
    simulator.add_fault("api_authorizer_token", after_effect=True, drop=True)
    with pytest.raises(requests.ConnectionError):
        requests.post(
            simulator.url + COMPONENT + "api_authorizer_token",
            params={"component_access_token": token},
            json={
                "component_appid": platform.appid,
                "authorizer_appid": appid,
                "authorizer_refresh_token": before,
            },
            timeout=10,
        )
    after_drop = simulator.account(appid)["refresh_tokens"][0]["value"]
    assert after_drop != before
    simulator.add_fault("api_authorizer_token", after_effect=True, errcode=-1)
    assert refresh(simulator, token, appid, after_drop)["errcode"] == -1
    assert simulator.account(appid)["refresh_tokens"][0]["value"] != after_drop
    # Without after_effect a fault fails instead of the work: nothing rotates.
    current = simulator.account(appid)["refresh_tokens"][0]["value"]
    simulator.add_fault("api_authorizer_token", http_status=503)
    assert (
        requests.post(
            simulator.url + COMPONENT + "api_authorizer_token",
            params={"component_access_token": token},
            timeout=10,
        ).status_code
        == 503
    )
    assert simulator.account(appid)["refresh_tokens"][0]["value"] == current


def test_fault_refusals(simulator: Simulator) -> None:
    assert (
        sim_post(simulator, "/__sim/faults", {"api": "x", "explode": True}).json()["error"] == "unknown_field"
    )
    assert sim_post(simulator, "/__sim/faults", {"times": 1}).json()["error"] == "missing_parameter"


def test_concurrent_refreshes_without_rotation_all_succeed(simulator: Simulator, token: str) -> None:
    info = authorize(simulator, token)
    appid, refresh_token = info["authorizer_appid"], info["authorizer_refresh_token"]
    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(lambda _: refresh(simulator, token, appid, refresh_token), range(50)))
    assert {a["authorizer_refresh_token"] for a in answers} == {refresh_token}
    assert len({a["authorizer_access_token"] for a in answers}) == 50
    live = [t for t in simulator.account(appid)["access_tokens"] if t["superseded_at"] is None]
    assert len(live) == 1
    assert live[0]["value"] in {a["authorizer_access_token"] for a in answers}


def test_concurrent_refreshes_with_rotation_and_no_grace_let_exactly_one_win(
    simulator: Simulator, token: str
) -> None:
    info = authorize(simulator, token)
    appid, refresh_token = info["authorizer_appid"], info["authorizer_refresh_token"]
    simulator.set_rotation(appid, grace_seconds=0)
    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(lambda _: refresh(simulator, token, appid, refresh_token), range(50)))
    winners = [a for a in answers if "authorizer_refresh_token" in a]
    assert len(winners) == 1
    assert sorted(a.get("errcode", 0) for a in answers) == [0] + [61023] * 49
    assert simulator.account(appid)["refresh_tokens"][0]["value"] == winners[0]["authorizer_refresh_token"]


# --- api_get_authorizer_info -----------------------------------------------------------------


def test_authorizer_info_of_an_official_account(simulator: Simulator, platform: Platform, token: str) -> None:
    info = authorize(simulator, token)
    answer = call(
        simulator,
        "api_get_authorizer_info",
        token,
        {"component_appid": platform.appid, "authorizer_appid": info["authorizer_appid"]},
    )
    account = simulator.account(info["authorizer_appid"])
    authorizer = answer["authorizer_info"]
    assert authorizer["user_name"] == account["user_name"]
    assert authorizer["nick_name"] == account["nick_name"]
    assert authorizer["service_type_info"] == {"id": 2}
    assert authorizer["verify_type_info"] == {"id": 0}
    assert authorizer["account_status"] == 1
    assert set(authorizer["business_info"]) == {
        "open_store",
        "open_scan",
        "open_pay",
        "open_card",
        "open_shake",
    }
    for key in ("head_img", "principal_name", "alias", "qrcode_url", "signature"):
        assert isinstance(authorizer[key], str)
    assert "MiniProgramInfo" not in authorizer
    assert answer["authorization_info"] == {
        "authorizer_appid": info["authorizer_appid"],
        "authorizer_refresh_token": info["authorizer_refresh_token"],
        "func_info": info["func_info"],
    }


def test_authorizer_info_of_a_mini_program_and_refusals(
    simulator: Simulator, platform: Platform, token: str
) -> None:
    info = authorize(simulator, token, "mini_program")
    body = {"component_appid": platform.appid, "authorizer_appid": info["authorizer_appid"]}
    authorizer = call(simulator, "api_get_authorizer_info", token, body)["authorizer_info"]
    assert authorizer["service_type_info"] == {"id": 0}
    mini = authorizer["MiniProgramInfo"]
    assert set(mini) == {"network", "categories", "visit_status"}
    assert "RequestDomain" in mini["network"]
    assert mini["categories"] == [{"first": "工具", "second": "效率"}]

    never = simulator.add_account("mini_program")["appid"]
    body_never = {"component_appid": platform.appid, "authorizer_appid": never}
    assert call(simulator, "api_get_authorizer_info", token, body_never)["errcode"] == 61003
    body_unknown = {"component_appid": platform.appid, "authorizer_appid": "wx" + "2" * 16}
    assert call(simulator, "api_get_authorizer_info", token, body_unknown)["errcode"] == 61003
    simulator.revoke(info["authorizer_appid"])
    assert call(simulator, "api_get_authorizer_info", token, body)["errcode"] == 61003


# --- api_get_authorizer_list -----------------------------------------------------------------


def test_authorizer_list_pages_in_a_stable_order_with_current_refresh_tokens(
    simulator: Simulator, platform: Platform, token: str
) -> None:
    authorized = [authorize(simulator, token) for _ in range(5)]
    simulator.add_account("official_account")  # never authorized: not listed
    pending = simulator.add_account("mini_program")["appid"]
    simulator.query_auth_code(pending)  # authorized, code never exchanged: listed, refresh_token ""
    simulator.revoke(authorized[1]["authorizer_appid"])

    def page(offset: int, count: int) -> dict[str, Any]:
        return call(
            simulator,
            "api_get_authorizer_list",
            token,
            {"component_appid": platform.appid, "offset": offset, "count": count},
        )

    pages = [page(0, 2), page(2, 2), page(4, 2)]
    assert {p["total_count"] for p in pages} == {5}
    assert [len(p["list"]) for p in pages] == [2, 2, 1]
    rows = [row for p in pages for row in p["list"]]
    expected = [a["authorizer_appid"] for a in authorized if a is not authorized[1]] + [pending]
    assert [r["authorizer_appid"] for r in rows] == expected
    assert [r["refresh_token"] for r in rows[:4]] == [
        a["authorizer_refresh_token"] for a in authorized if a is not authorized[1]
    ]
    assert rows[4]["refresh_token"] == ""
    assert all(isinstance(r["auth_time"], int) for r in rows)
    assert page(0, 500)["list"] == rows
    assert page(10, 5) == {"total_count": 5, "list": []}


@pytest.mark.parametrize(
    "offset_count",
    [(0, 501), (0, 0), (-1, 10), ("0", 10), (0, "10"), (0, 1.5), (None, 10), (0, True)],
)
def test_authorizer_list_refuses_bad_offset_and_count(
    simulator: Simulator, platform: Platform, token: str, offset_count: tuple[Any, Any]
) -> None:
    offset, count = offset_count
    body = {"component_appid": platform.appid, "offset": offset, "count": count}
    answer = call(simulator, "api_get_authorizer_list", token, body)
    assert answer["errcode"] == 40097
    assert answer["errmsg"].startswith("invalid args rid: ")


# --- revocation ------------------------------------------------------------------------------


def test_revocation_kills_tokens_codes_and_listing(
    simulator: Simulator, platform: Platform, token: str
) -> None:
    info = authorize(simulator, token)
    appid = info["authorizer_appid"]
    unused_code = simulator.query_auth_code(appid)
    answer = sim_post(simulator, f"/__sim/accounts/{appid}/revoke")
    assert answer.status_code == 200
    assert answer.json()["authorized"] is False
    assert answer.json()["push"] is None  # no callback URL configured
    view = simulator.account(appid)
    assert (view["authorized"], view["refresh_tokens"], view["access_tokens"]) == (False, [], [])
    assert refresh(simulator, token, appid, info["authorizer_refresh_token"])["errcode"] == 61023
    exchange = {"component_appid": platform.appid, "authorization_code": unused_code}
    assert call(simulator, "api_query_auth", token, exchange)["errcode"] == 61009
    listed = call(
        simulator,
        "api_get_authorizer_list",
        token,
        {"component_appid": platform.appid, "offset": 0, "count": 10},
    )
    assert listed == {"total_count": 0, "list": []}
    again = sim_post(simulator, f"/__sim/accounts/{appid}/revoke")
    assert (again.status_code, again.json()["error"]) == (409, "not_authorized")
