"""Authorization end to end over HTTP: our link, the simulated owner's approval, the redirect and the
``authorized`` push (whichever comes first exchanges the code), revocation, recovery."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from wechat_core import runtime
from wechat_core.errors import Conflict, WeChatCodeInvalid
from wechat_core.features import onboarding
from wechat_core.store import keys
from wechat_simulator import Platform, Simulator

from devtools.events import EVENTS_PATH
from devtools.resources import Resources
from tests.conftest import FixedClock
from tests.support.flows import accepted_refresh_tokens, add_fault, authorize, authorizer, calls, give_ticket
from tests.support.gateway import Gateway

pytestmark = pytest.mark.integration


@pytest.fixture
def site(
    gateway: Gateway, simulator: Simulator, service: Resources, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Gateway]:
    """The service behind the loopback gateway, with a ticket, and WeChat pushing to its callback."""
    monkeypatch.setenv("PUBLIC_BASE_URL", gateway.url)
    runtime.reset()
    give_ticket(simulator)
    simulator.callback_url = gateway.url + EVENTS_PATH
    yield gateway
    simulator.callback_url = None


def new_link(site: Gateway, **query: str) -> dict[str, Any]:
    answer = requests.get(
        f"{site.url}/wechat/component/authorize", params={"format": "json", **query}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["Cache-Control"] == "no-store"
    body: dict[str, Any] = answer.json()
    return body


def link_query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def approve_on_wechat(link: str, appid: str) -> requests.Response:
    """The account owner clicks approve on WeChat's page; WeChat answers the browser with a 302."""
    answer = requests.get(
        link, params={"sim_account": appid, "sim_action": "approve"}, allow_redirects=False, timeout=10
    )
    assert answer.status_code == 302, answer.headers.get("X-Sim-Error")
    return answer


def test_pc_link_redirect_and_push_store_one_authorization(
    site: Gateway, simulator: Simulator, service: Resources
) -> None:
    appid = str(simulator.add_account("mini_program", nick_name="小店")["appid"])
    link = new_link(site, auth_type="2")
    assert link["url"].startswith(f"{simulator.url}/cgi-bin/componentloginpage?")
    query = link_query(link["url"])
    assert query["component_appid"] == simulator.state.platform.appid
    assert query["auth_type"] == "2"
    assert query["redirect_uri"].startswith(f"{site.url}/wechat/component/authorized?state=")

    # WeChat pushes `authorized` (the callback exchanges the code) before answering the browser.
    approved = approve_on_wechat(link["url"], appid)
    assert approved.headers["X-Sim-Push-Status"] == "200"
    item = authorizer(appid)
    assert item["status"] == "active"
    assert item["refresh_token"] in accepted_refresh_tokens(simulator, appid)

    # The browser then lands on our redirect_uri with the same code: nothing is exchanged twice.
    landed = requests.get(approved.headers["Location"], timeout=10)
    assert landed.status_code == 200
    assert appid in landed.text
    assert calls(simulator, "api_query_auth") == 1
    assert calls(simulator, "api_create_preauthcode") == 1
    again = authorizer(appid)
    assert again["version"] == item["version"]
    assert again["info"]["kind"] == "mini_program"
    assert again["info"]["nick_name"] == "小店"
    assert again["func_info"]
    assert again["expires_at"] > time.time() + 3600


def test_redirect_first_then_push(
    site: Gateway, simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTHORIZED_REDIRECT_URL", "https://console.example.com/done?from=wechat")
    runtime.reset()
    appid = str(simulator.add_account("official_account")["appid"])
    simulator.callback_url = None  # the push is late: the browser gets here first
    link = new_link(site)
    approved = approve_on_wechat(link["url"], appid)
    landed = requests.get(approved.headers["Location"], allow_redirects=False, timeout=10)
    assert landed.status_code == 302
    assert (
        landed.headers["Location"] == f"https://console.example.com/done?from=wechat&authorizer_appid={appid}"
    )
    assert authorizer(appid)["status"] == "active"
    version = authorizer(appid)["version"]

    # Now the delayed `authorized` push with the same code (already used at WeChat: 40163).
    code = link_query(approved.headers["Location"])["auth_code"]
    pushed = simulator.push_xml(simulator_authorized_xml(simulator, appid, code), url=site.url + EVENTS_PATH)
    assert (pushed["status"], pushed["body"]) == (200, "success")
    assert authorizer(appid)["version"] == version
    assert authorizer(appid)["status"] == "active"
    assert calls(simulator, "api_query_auth") == 1


def simulator_authorized_xml(simulator: Simulator, appid: str, code: str) -> str:
    from wechat_core.protocol.messages import build_xml

    now = int(time.time())
    return build_xml(
        {
            "AppId": simulator.state.platform.appid,
            "CreateTime": now,
            "InfoType": "authorized",
            "AuthorizerAppid": appid,
            "AuthorizationCode": code,
            "AuthorizationCodeExpiredTime": now + 3600,
            "PreAuthCode": "preauthcode@@@late",
        }
    )


def test_mobile_link_and_html_and_redirect_formats(site: Gateway, simulator: Simulator) -> None:
    link = new_link(site, mobile="1", biz_appid="wx" + "a" * 16, category_list="1|2")
    url = urlsplit(link["url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{simulator.url}/wxaopen/safe/bindcomponent"
    assert url.fragment == "wechat_redirect"
    query = link_query(link["url"])
    assert (query["action"], query["no_scan"], query["biz_appid"], query["category_id_list"]) == (
        "bindcomponent",
        "1",
        "wx" + "a" * 16,
        "1|2",
    )
    page = requests.get(f"{site.url}/wechat/component/authorize", timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert 'id="authorize" href="' + simulator.url + "/cgi-bin/componentloginpage?" in page.text
    moved = requests.get(
        f"{site.url}/wechat/component/authorize?format=redirect", allow_redirects=False, timeout=10
    )
    assert moved.status_code == 302
    assert moved.headers["Location"].startswith(simulator.url + "/cgi-bin/componentloginpage?")
    # Never cached: each link has its own pre_auth_code and state.
    codes = {link_query(new_link(site)["url"])["pre_auth_code"] for _ in range(3)}
    assert len(codes) == 3
    assert calls(simulator, "api_create_preauthcode") == 6


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({"auth_type": "9"}, "auth_type must be 1 (official accounts), 2 (mini programs) or 3 (both)"),
        ({"biz_appid": "not-an-appid"}, "biz_appid must be an appid (wx + 16 characters)"),
        ({"category_list": "1|x"}, "category_list must be permission-set ids joined by |"),
        ({"format": "xml"}, "format must be html, json or redirect"),
        ({"mobile": "yes"}, "mobile must be 0 or 1"),
    ],
)
def test_bad_link_requests_are_refused_without_a_pre_auth_code(
    site: Gateway, simulator: Simulator, service: Resources, query: dict[str, str], reason: str
) -> None:
    before = service.snapshot()
    answer = requests.get(f"{site.url}/wechat/component/authorize", params=query, timeout=10)
    assert (answer.status_code, answer.json()) == (400, {"error": reason})
    assert calls(simulator, "api_create_preauthcode") == 0
    assert service.snapshot() == before


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({}, "missing or malformed state"),
        ({"state": "x" * 65, "auth_code": "c"}, "missing or malformed state"),
        ({"state": "forged-state", "auth_code": "queryauthcode@@@x"}, "unknown or expired state"),
    ],
)
def test_redirect_without_our_state_is_refused(
    site: Gateway, simulator: Simulator, service: Resources, query: dict[str, str], reason: str
) -> None:
    before = service.snapshot()
    answer = requests.get(f"{site.url}/wechat/component/authorized", params=query, timeout=10)
    assert (answer.status_code, answer.json()) == (400, {"error": reason})
    assert calls(simulator, "api_query_auth") == 0
    assert service.snapshot() == before


def test_refused_authorization_and_bad_codes(site: Gateway, simulator: Simulator, service: Resources) -> None:
    appid = str(simulator.add_account("official_account")["appid"])
    simulator.callback_url = None
    link = new_link(site)
    redirect_uri = link_query(link["url"])["redirect_uri"]
    refused = requests.get(
        link["url"], params={"sim_account": appid, "sim_action": "refuse"}, allow_redirects=False, timeout=10
    )
    assert refused.headers["Location"] == redirect_uri
    before = service.snapshot()
    answer = requests.get(refused.headers["Location"], timeout=10)
    assert (answer.status_code, answer.json()) == (
        400,
        {"error": "authorization refused or auth_code missing"},
    )
    forged = requests.get(redirect_uri, params={"auth_code": "queryauthcode@@@forged"}, timeout=10)
    assert (forged.status_code, forged.json()) == (
        400,
        {"error": "invalid authorization code (WeChat errcode 61009)"},
    )
    assert service.snapshot() == before


def test_unauthorized_push_revokes_and_tokens_are_no_longer_handed_out(
    site: Gateway, simulator: Simulator, service: Resources, fixed_clock: FixedClock
) -> None:
    appid = authorize(simulator)
    token = requests.get(f"{site.url}/wechat/authorizers/{appid}/token", timeout=10)
    assert token.status_code == 200
    revoked = simulator.revoke(appid, push=True)
    assert revoked["push"]["status"] == 200
    item = authorizer(appid)
    assert item["status"] == "revoked"
    assert item["revoked_at"] > 0
    assert "refresh_token" not in item
    assert "access_token" not in item
    assert "due_at" not in item
    refused = requests.get(f"{site.url}/wechat/authorizers/{appid}/token", timeout=10)
    assert (refused.status_code, refused.json()) == (409, {"error": "authorization revoked"})

    # The owner authorizes again later (a revocation wins a push in its own second): the new
    # code brings the authorization back.
    simulator.advance_clock(2)
    fixed_clock.value = simulator.state.now()
    code = simulator.query_auth_code(appid, push=True)
    assert code
    assert authorizer(appid)["status"] == "active"
    assert authorizer(appid)["refresh_token"] in accepted_refresh_tokens(simulator, appid)


def test_code_issued_before_a_revocation_does_not_bring_it_back(
    simulator: Simulator, service: Resources
) -> None:
    give_ticket(simulator)
    appid = authorize(simulator)
    code = simulator.query_auth_code(appid)
    runtime.store().table.update(
        keys.authorizer_sk(appid), set_values={"status": "revoked", "revoked_at": int(time.time()) + 60}
    )
    with pytest.raises(Conflict):
        onboarding.complete(code)
    assert authorizer(appid)["status"] == "revoked"


def test_exchange_is_idempotent_per_code(simulator: Simulator, service: Resources) -> None:
    give_ticket(simulator)
    appid = str(simulator.add_account("official_account")["appid"])
    code = simulator.query_auth_code(appid)
    first = onboarding.complete(code)
    second = onboarding.complete(code)
    assert (first.newly_stored, second.newly_stored) == (True, False)
    assert first.authorizer_appid == second.authorizer_appid == appid
    assert calls(simulator, "api_query_auth") == 1
    with pytest.raises(WeChatCodeInvalid):
        onboarding.complete("queryauthcode@@@never")


def test_info_failure_keeps_the_authorization(simulator: Simulator, service: Resources) -> None:
    give_ticket(simulator)
    add_fault(simulator, api="api_get_authorizer_info", errcode=61003)
    appid = authorize(simulator)
    item = authorizer(appid)
    assert item["status"] == "active"
    assert "info" not in item
    assert onboarding.refresh_info(appid)["kind"] == "official_account"
    assert authorizer(appid)["info"]["kind"] == "official_account"


def test_recovery_restores_refresh_tokens_missing_from_the_table(
    simulator: Simulator, service: Resources
) -> None:
    give_ticket(simulator)
    appids = [authorize(simulator) for _ in range(5)]
    never_exchanged = str(simulator.add_account("official_account")["appid"])
    simulator.query_auth_code(never_exchanged)  # authorized at WeChat, code never exchanged
    store = runtime.store()
    # A wiped (or partly restored) table: two items gone, one lost its refresh token.
    for appid in appids[:2]:
        store.table.delete(keys.authorizer_sk(appid))
    store.table.update(keys.authorizer_sk(appids[2]), remove=("refresh_token",))
    revoked_here = appids[3]
    store.table.update(
        keys.authorizer_sk(revoked_here),
        set_values={"status": "revoked", "revoked_at": int(time.time()) + 60},
        remove=("refresh_token",),
    )

    result = onboarding.recover_from_authorizer_list(page_size=2)  # paging: 3 pages
    assert result == {"listed": 6, "restored": 3}
    assert calls(simulator, "api_get_authorizer_list") == 3
    for appid in appids[:3]:
        item = authorizer(appid)
        assert item["status"] == "active"
        assert item["refresh_token"] in accepted_refresh_tokens(simulator, appid)
        assert item["due_at"] <= time.time()
    assert authorizer(revoked_here)["status"] == "revoked"  # a later revocation push stands
    assert store.authorizers.get(never_exchanged) is None
    # Running it again changes nothing.
    assert onboarding.recover_from_authorizer_list()["restored"] == 0


def test_other_platform_code_is_refused(platform: Platform, simulator: Simulator, service: Resources) -> None:
    give_ticket(simulator)
    with pytest.raises(WeChatCodeInvalid):
        onboarding.complete("queryauthcode@@@" + "z" * 20)
    assert runtime.store().authorizers.page(10, None)[0] == []
