"""Web OAuth on behalf of Official Accounts and JS-SDK tickets through the simulator over real
HTTP: the connect/oauth2/authorize page (both scopes, refusal, its error pages and the
web-authorization domains), sns/oauth2/component/access_token and sns/userinfo with their error
codes, getticket with the authorizer-token checks, and wx.config signatures checked the way
WeChat's client does (signed here with hashlib, independently of the simulator)."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from wechat_simulator import Platform, SimError, Simulator

pytestmark = pytest.mark.integration

AUTHORIZE = "/connect/oauth2/authorize"
ACCESS_TOKEN = "/sns/oauth2/component/access_token"
USERINFO = "/sns/userinfo"
GETTICKET = "/cgi-bin/ticket/getticket"
REDIRECT = "https://h5.svc.example/wechat/oauth/callback?next=%2Fshop&x=1"


@pytest.fixture
def token(simulator: Simulator) -> str:
    return simulator.issue_component_token()


def official_account(sim: Simulator, *, unionid_bound: bool = False, authorized: bool = True) -> str:
    appid = str(sim.add_account("official_account", unionid_bound=unionid_bound)["appid"])
    if authorized:
        sim.query_auth_code(appid)
    return appid


def link_query(sim: Simulator, appid: str, **override: str | None) -> str:
    """The link's query, WeChat's parameters in WeChat's order; None leaves one out."""
    params: dict[str, str | None] = {
        "appid": appid,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": "snsapi_userinfo",
        "state": "s7Xq2",
        "component_appid": sim.state.platform.appid,
    }
    params.update(override)
    return urlencode({k: v for k, v in params.items() if v is not None})


def authorize_url(sim: Simulator, appid: str, **override: str | None) -> str:
    """The link as a service produces it: open.weixin.qq.com, #wechat_redirect."""
    return f"https://open.weixin.qq.com{AUTHORIZE}?{link_query(sim, appid, **override)}#wechat_redirect"


def open_page(sim: Simulator, query: str, **sim_params: str) -> requests.Response:
    extra = "&" + urlencode(sim_params) if sim_params else ""
    return requests.get(f"{sim.url}{AUTHORIZE}?{query}{extra}", allow_redirects=False, timeout=10)


def redirect_query(location: str) -> dict[str, str]:
    assert location.startswith("https://h5.svc.example/wechat/oauth/callback?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query, keep_blank_values=True).items()}


def code_of(location: str) -> str:
    return redirect_query(location)["code"]


def exchange(sim: Simulator, token: str | None, appid: str, code: str, **override: str) -> dict[str, Any]:
    params = {
        "appid": appid,
        "code": code,
        "grant_type": "authorization_code",
        "component_appid": sim.state.platform.appid,
    }
    if token is not None:
        params["component_access_token"] = token
    response = requests.get(sim.url + ACCESS_TOKEN, params=params | override, timeout=10)
    assert response.status_code == 200
    answer: dict[str, Any] = response.json()
    return answer


def userinfo(sim: Simulator, access: str | None, openid: str | None, lang: str = "zh_CN") -> dict[str, Any]:
    params = {"lang": lang}
    if access is not None:
        params["access_token"] = access
    if openid is not None:
        params["openid"] = openid
    response = requests.get(sim.url + USERINFO, params=params, timeout=10)
    assert response.status_code == 200
    answer: dict[str, Any] = response.json()
    return answer


def calls(sim: Simulator) -> dict[str, int]:
    answer: dict[str, int] = requests.get(sim.url + "/__sim/calls", timeout=10).json()
    return answer


# --- web OAuth: both scopes end to end ------------------------------------------------------


def test_snsapi_userinfo_page_code_token_and_profile(simulator: Simulator, token: str) -> None:
    appid = official_account(simulator, unionid_bound=True)
    query = link_query(simulator, appid)
    page = open_page(simulator, query, sim_user="alice")
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert 'data-action="approve"' in page.text
    assert 'data-action="refuse"' in page.text
    assert 'data-user="alice"' in page.text

    # Follow the page's own approve link, as a browser would.
    href = page.text.split('data-action="approve"')[0].rsplit('href="?', 1)[1].split('"', 1)[0]
    approved = requests.get(
        f"{simulator.url}{AUTHORIZE}?{href.replace('&amp;', '&')}", allow_redirects=False, timeout=10
    )
    assert approved.status_code == 302
    redirect = redirect_query(approved.headers["Location"])
    assert set(redirect) == {"next", "x", "code", "state", "appid"}  # its own query is kept
    assert (redirect["next"], redirect["x"], redirect["state"], redirect["appid"]) == (
        "/shop",
        "1",
        "s7Xq2",
        appid,
    )

    answer = exchange(simulator, token, appid, redirect["code"])
    assert set(answer) == {"access_token", "expires_in", "refresh_token", "openid", "scope", "unionid"}
    assert answer["expires_in"] == 7200
    assert answer["scope"] == "snsapi_userinfo"
    assert answer["openid"] == simulator.fan_openid(appid, "alice")  # the same user the account knows
    assert answer["access_token"] != answer["refresh_token"]
    assert simulator.oauth_tokens() == [answer["access_token"], answer["refresh_token"]]
    listed = requests.get(simulator.url + "/__sim/oauth_tokens", timeout=10).json()
    assert listed == simulator.oauth_tokens()

    profile = userinfo(simulator, answer["access_token"], answer["openid"])
    assert set(profile) == {
        "openid",
        "nickname",
        "sex",
        "province",
        "city",
        "country",
        "headimgurl",
        "privilege",
        "unionid",
    }
    assert profile["openid"] == answer["openid"]
    assert profile["unionid"] == answer["unionid"]
    assert profile["privilege"] == []
    assert profile["sex"] in (0, 1, 2)
    assert (profile["province"], profile["country"]) == ("广东", "中国")
    assert userinfo(simulator, answer["access_token"], answer["openid"], "en")["country"] == "China"
    assert calls(simulator) == {"authorize": 2, "access_token": 1, "userinfo": 2}

    # Another user has another openid in the account, and the same unionid everywhere.
    bob = exchange(
        simulator, token, appid, code_of(simulator.oauth_consent(authorize_url(simulator, appid), "bob"))
    )
    assert bob["openid"] != answer["openid"]
    assert bob["unionid"] != answer["unionid"]


def test_snsapi_base_is_silent_and_gives_only_the_openid(simulator: Simulator, token: str) -> None:
    appid = official_account(simulator, unionid_bound=True)
    page = open_page(simulator, link_query(simulator, appid, scope="snsapi_base"))
    assert page.status_code == 200
    assert 'data-action="approve"' in page.text
    assert 'data-action="refuse"' not in page.text  # no screen: nothing to refuse

    url = authorize_url(simulator, appid, scope="snsapi_base")
    answer = exchange(simulator, token, appid, code_of(simulator.oauth_consent(url)))
    assert set(answer) == {"access_token", "expires_in", "refresh_token", "openid", "scope"}  # no unionid
    assert answer["scope"] == "snsapi_base"
    assert answer["openid"] == simulator.fan_openid(appid)  # the default user
    refused = userinfo(simulator, answer["access_token"], answer["openid"])
    assert refused["errcode"] == 48001
    assert refused["errmsg"].startswith("api unauthorized rid: ")

    with pytest.raises(SimError) as no_screen:
        simulator.oauth_consent(url, action="refuse")
    assert (no_screen.value.reason, no_screen.value.status) == ("no_consent_screen", 400)


def test_refusal_redirects_without_a_code(simulator: Simulator) -> None:
    appid = official_account(simulator)
    location = simulator.oauth_consent(authorize_url(simulator, appid), "alice", "refuse")
    assert redirect_query(location) == {"next": "/shop", "x": "1", "state": "s7Xq2", "appid": appid}
    over_http = open_page(simulator, link_query(simulator, appid), sim_action="refuse")
    assert over_http.status_code == 302
    assert "code" not in redirect_query(over_http.headers["Location"])
    assert not simulator.state.oauth_codes

    # Without state (optional), the redirect carries an empty one.
    approved = simulator.oauth_consent(authorize_url(simulator, appid, state=None))
    assert redirect_query(approved)["state"] == ""


def test_codes_are_single_use_live_five_minutes_and_belong_to_one_account(
    simulator: Simulator, token: str
) -> None:
    appid = official_account(simulator)
    code = code_of(simulator.oauth_consent(authorize_url(simulator, appid)))
    assert "access_token" in exchange(simulator, token, appid, code)
    used = exchange(simulator, token, appid, code)
    assert used["errcode"] == 40163
    assert used["errmsg"].startswith("code been used rid: ")

    late = code_of(simulator.oauth_consent(authorize_url(simulator, appid)))
    simulator.advance_clock(301)
    expired = exchange(simulator, token, appid, late)
    assert expired["errcode"] == 40029
    assert expired["errmsg"].startswith("invalid code rid: ")
    token = simulator.issue_component_token()  # (the clock moved)

    other = official_account(simulator)
    others_code = code_of(simulator.oauth_consent(authorize_url(simulator, other)))
    assert exchange(simulator, token, appid, others_code)["errcode"] == 40029
    assert exchange(simulator, token, appid, "not-a-code")["errcode"] == 40029
    assert exchange(simulator, token, appid, "")["errcode"] == 41008
    assert "access_token" in exchange(simulator, token, other, others_code)  # still good for its account


def test_revocation_kills_unexchanged_codes(simulator: Simulator, token: str) -> None:
    appid = official_account(simulator)
    code = code_of(simulator.oauth_consent(authorize_url(simulator, appid)))
    simulator.revoke(appid, push=False)
    refused = exchange(simulator, token, appid, code)
    assert refused["errcode"] == 61003  # the account no longer authorizes the component
    simulator.query_auth_code(appid)
    assert exchange(simulator, token, appid, code)["errcode"] == 40029  # and the code stays dead
    fresh = code_of(simulator.oauth_consent(authorize_url(simulator, appid)))
    assert "access_token" in exchange(simulator, token, appid, fresh)


def test_access_token_refusals(simulator: Simulator, platform: Platform, token: str) -> None:
    appid = official_account(simulator)
    code = code_of(simulator.oauth_consent(authorize_url(simulator, appid)))
    assert exchange(simulator, None, appid, code)["errcode"] == 41001
    assert exchange(simulator, "sim_cat_unknown", appid, code)["errcode"] == 40001
    assert exchange(simulator, token, appid, code, access_token=token, component_access_token="")["openid"]
    code = code_of(simulator.oauth_consent(authorize_url(simulator, appid)))
    assert exchange(simulator, token, appid, code, component_appid="")["errcode"] == 41002
    assert exchange(simulator, token, appid, code, component_appid="wx" + "9" * 16)["errcode"] == 61011
    assert exchange(simulator, token, appid, code, grant_type="refresh_token")["errcode"] == 40002
    assert exchange(simulator, token, "", code)["errcode"] == 41002
    assert exchange(simulator, token, "wx" + "a" * 16, code)["errcode"] == 40013
    mini = str(simulator.add_account("mini_program")["appid"])
    simulator.query_auth_code(mini)
    assert exchange(simulator, token, mini, code)["errcode"] == 40013
    pending = official_account(simulator, authorized=False)
    assert exchange(simulator, token, pending, code)["errcode"] == 61003
    assert "access_token" in exchange(simulator, token, appid, code)  # the refusals left it unused

    newer = simulator.issue_component_token()
    simulator.advance_clock(301)
    code = code_of(simulator.oauth_consent(authorize_url(simulator, appid)))
    assert exchange(simulator, token, appid, code)["errcode"] == 42001
    assert "access_token" in exchange(simulator, newer, appid, code)


def test_userinfo_refusals(simulator: Simulator, token: str) -> None:
    appid = official_account(simulator)
    answer = exchange(
        simulator, token, appid, code_of(simulator.oauth_consent(authorize_url(simulator, appid)))
    )
    access, openid = answer["access_token"], answer["openid"]
    assert userinfo(simulator, None, openid)["errcode"] == 41001
    assert userinfo(simulator, "sim_oat_unknown", openid)["errcode"] == 40001
    assert userinfo(simulator, answer["refresh_token"], openid)["errcode"] == 40001  # not an access token
    assert userinfo(simulator, token, openid)["errcode"] == 40001  # a component token neither
    assert userinfo(simulator, access, None)["errcode"] == 41009
    mismatch = userinfo(simulator, access, simulator.fan_openid(appid, "someone else"))
    assert mismatch["errcode"] == 40003
    assert mismatch["errmsg"].startswith("invalid openid rid: ")
    assert userinfo(simulator, access, openid)["openid"] == openid
    simulator.advance_clock(7200)
    assert userinfo(simulator, access, openid)["errcode"] == 42001


def test_oauth_apis_are_counted_and_faulted(simulator: Simulator, token: str) -> None:
    appid = official_account(simulator)
    simulator.add_fault("access_token", errcode=-1)
    code = code_of(simulator.oauth_consent(authorize_url(simulator, appid)))
    assert exchange(simulator, token, appid, code)["errcode"] == -1
    simulator.add_fault("access_token", after_effect=True)
    lost = requests.get(
        simulator.url + ACCESS_TOKEN,
        params={
            "appid": appid,
            "code": code,
            "grant_type": "authorization_code",
            "component_appid": simulator.state.platform.appid,
            "component_access_token": token,
        },
        timeout=10,
    )
    assert lost.status_code == 502
    assert len(simulator.oauth_tokens()) == 2  # WeChat issued them; the caller never saw them
    assert exchange(simulator, token, appid, code)["errcode"] == 40163
    simulator.add_fault("userinfo", http_status=503)
    assert requests.get(simulator.url + USERINFO, timeout=10).status_code == 503
    assert calls(simulator)["access_token"] == 3
    assert calls(simulator)["userinfo"] == 1


# --- the authorize page's refusals and the web-authorization domains ------------------------


def test_the_page_refuses_what_wechat_refuses(simulator: Simulator) -> None:
    appid = official_account(simulator)
    mini = str(simulator.add_account("mini_program")["appid"])
    simulator.query_auth_code(mini)
    pending = official_account(simulator, authorized=False)
    revoked = official_account(simulator)
    simulator.revoke(revoked, push=False)
    banned = str(simulator.add_account("official_account", account_status=16)["appid"])
    simulator.query_auth_code(banned)

    def refusal(query: str, **sim_params: str) -> tuple[int, str]:
        page = open_page(simulator, query, **sim_params)
        assert page.headers["Content-Type"].startswith("text/html")
        return page.status_code, page.headers.get("X-Sim-Error", "")

    q = link_query
    swapped = q(simulator, appid).replace(
        "response_type=code&scope=snsapi_userinfo", "scope=snsapi_userinfo&response_type=code"
    )
    cases = {
        q(simulator, "wx" + "a" * 16): (404, "unknown_account"),
        q(simulator, mini): (400, "not_an_official_account"),
        q(simulator, pending): (400, "account_not_authorized"),
        q(simulator, revoked): (400, "account_not_authorized"),
        q(simulator, banned): (400, "account_not_active"),
        q(simulator, appid, component_appid="wx" + "9" * 16): (400, "invalid_component"),
        q(simulator, appid, response_type="token"): (400, "invalid_response_type"),
        q(simulator, appid, scope="snsapi_login"): (400, "invalid_scope"),
        q(simulator, appid, state="a" * 129): (400, "invalid_state"),
        q(simulator, appid, redirect_uri="/wechat/oauth/callback"): (400, "invalid_redirect_uri"),
        q(simulator, appid, redirect_uri="ftp://h5.svc.example/x"): (400, "invalid_redirect_uri"),
        q(simulator, appid, scope=None): (400, "missing_parameter"),
        q(simulator, appid, component_appid=None): (400, "missing_parameter"),
        swapped: (400, "parameter_order"),
    }
    for query, expected in cases.items():
        assert refusal(query) == expected, query
    assert refusal(q(simulator, appid, state="a" * 128)) == (200, "")
    assert refusal(q(simulator, appid), sim_action="maybe") == (400, "invalid_sim_action")
    assert refusal(q(simulator, appid), sim_action="approve", sim_user="") == (400, "invalid_user")
    assert calls(simulator)["authorize"] == len(cases) + 3

    # oauth_consent raises the page's reason, and wants the link as WeChat does.
    with pytest.raises(SimError) as refused:
        simulator.oauth_consent(authorize_url(simulator, mini))
    assert refused.value.reason == "not_an_official_account"
    with pytest.raises(SimError) as no_fragment:
        simulator.oauth_consent(authorize_url(simulator, appid).removesuffix("#wechat_redirect"))
    assert no_fragment.value.reason == "missing_wechat_redirect"
    with pytest.raises(SimError) as wrong_path:
        simulator.oauth_consent(
            f"https://open.weixin.qq.com/connect/qrconnect?{q(simulator, appid)}#wechat_redirect"
        )
    assert wrong_path.value.reason == "invalid_authorize_url"


def test_redirect_uri_must_be_on_a_web_authorization_domain(simulator: Simulator) -> None:
    appid = official_account(simulator)
    assert simulator.oauth_domains == []  # any host
    assert code_of(simulator.oauth_consent(authorize_url(simulator, appid)))

    settings = requests.post(
        simulator.url + "/__sim/settings", json={"oauth_domains": ["H5.svc.example"]}, timeout=10
    ).json()
    assert settings["oauth_domains"] == ["h5.svc.example"]
    assert simulator.oauth_domains == ["h5.svc.example"]
    assert code_of(simulator.oauth_consent(authorize_url(simulator, appid)))
    for foreign in (
        "https://evil.example/wechat/oauth/callback",
        "https://sub.h5.svc.example/cb",  # the full host, no subdomains
        "https://svc.example/cb",
        "https://h5.svc.example@evil.example/cb",
    ):
        page = open_page(simulator, link_query(simulator, appid, redirect_uri=foreign))
        assert (page.status_code, page.headers["X-Sim-Error"]) == (400, "redirect_uri_domain_not_allowed"), (
            foreign
        )
    with pytest.raises(SimError) as refused:
        simulator.oauth_consent(authorize_url(simulator, appid, redirect_uri="https://evil.example/cb"))
    assert refused.value.reason == "redirect_uri_domain_not_allowed"

    simulator.oauth_domains = ["127.0.0.1:3000"]  # a port pins the port
    local = "http://127.0.0.1:3000/wechat/oauth/callback"
    assert open_page(simulator, link_query(simulator, appid, redirect_uri=local)).status_code == 200
    other_port = link_query(simulator, appid, redirect_uri="http://127.0.0.1:3001/cb")
    assert open_page(simulator, other_port).headers["X-Sim-Error"] == "redirect_uri_domain_not_allowed"

    bad = requests.post(
        simulator.url + "/__sim/settings", json={"oauth_domains": ["https://x.example/"]}, timeout=10
    )
    assert (bad.status_code, bad.json()["error"]) == (400, "invalid_oauth_domains")
    with pytest.raises(SimError):
        simulator.oauth_domains = "h5.svc.example"  # a list is wanted, not a string
    reset = requests.post(simulator.url + "/__sim/settings", json={"oauth_domains": None}, timeout=10)
    assert reset.json()["oauth_domains"] == []

    chosen = Simulator(oauth_domains=["h5.svc.example"])
    try:
        assert chosen.oauth_domains == ["h5.svc.example"]
    finally:
        chosen.stop()


def test_the_command_line_has_an_oauth_domain_option(capfd: pytest.CaptureFixture[str]) -> None:
    from wechat_simulator.__main__ import main

    with pytest.raises(SystemExit) as usage:
        main(["--help"])
    assert usage.value.code == 0
    assert "--oauth-domain" in capfd.readouterr().out


def test_no_token_or_code_reaches_the_simulators_request_log(
    simulator: Simulator, token: str, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    appid = official_account(simulator)
    location = simulator.oauth_consent(authorize_url(simulator, appid))
    answer = exchange(simulator, token, appid, code_of(location))
    assert "nickname" in userinfo(simulator, answer["access_token"], answer["openid"])
    out, err = capfd.readouterr()
    log = "\n".join([out, err, caplog.text])
    assert "access_token=***&openid=" in log  # the userinfo request was logged, redacted
    for secret in [*simulator.oauth_tokens(), code_of(location), token]:
        assert secret not in log


# --- JS-SDK tickets and wx.config -----------------------------------------------------------


def sign(ticket: str, nonce_str: str, timestamp: int | str, url: str) -> str:
    """The wx.config signature as the JS-SDK doc's appendix 1 defines it."""
    text = f"jsapi_ticket={ticket}&noncestr={nonce_str}&timestamp={timestamp}&url={url.partition('#')[0]}"
    return hashlib.sha1(text.encode()).hexdigest()


def test_the_signing_here_matches_the_official_sample() -> None:
    ticket = "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg"
    signature = sign(ticket, "Wm3WZYTPz0wzccnW", 1414587457, "http://mp.weixin.qq.com?params=value")
    assert signature == "0f9de62fce790f9a083d5c99e95740ceb90c27ed"


def authorizer_token(sim: Simulator, appid: str) -> str:
    """A current authorizer_access_token, through api_query_auth as a service gets one."""
    response = requests.post(
        sim.url + "/cgi-bin/component/api_query_auth",
        params={"component_access_token": sim.issue_component_token()},
        json={"component_appid": sim.state.platform.appid, "authorization_code": sim.query_auth_code(appid)},
        timeout=10,
    )
    return str(response.json()["authorization_info"]["authorizer_access_token"])


def getticket(sim: Simulator, access: str | None, kind: str | None = "jsapi") -> dict[str, Any]:
    params = {k: v for k, v in {"access_token": access, "type": kind}.items() if v is not None}
    response = requests.get(sim.url + GETTICKET, params=params, timeout=10)
    assert response.status_code == 200
    answer: dict[str, Any] = response.json()
    return answer


def test_getticket_issues_tickets_that_live_7200_seconds(simulator: Simulator) -> None:
    appid = official_account(simulator)
    access = authorizer_token(simulator, appid)
    first = getticket(simulator, access)
    assert set(first) == {"errcode", "errmsg", "ticket", "expires_in"}
    assert (first["errcode"], first["errmsg"], first["expires_in"]) == (0, "ok", 7200)
    card = getticket(simulator, access, "wx_card")
    second = getticket(simulator, access)
    assert len({first["ticket"], card["ticket"], second["ticket"]}) == 3
    listed = requests.get(f"{simulator.url}/__sim/accounts/{appid}/jsapi_tickets", timeout=10).json()
    assert listed == simulator.jsapi_tickets(appid)
    assert [(t["ticket"], t["type"], t["valid"]) for t in listed] == [
        (first["ticket"], "jsapi", True),
        (card["ticket"], "wx_card", True),
        (second["ticket"], "jsapi", True),
    ]
    assert all(t["expires_at"] - t["issued_at"] == 7200 for t in listed)
    assert calls(simulator)["getticket"] == 3
    assert simulator.jsapi_tickets(official_account(simulator)) == []
    missing = requests.get(f"{simulator.url}/__sim/accounts/wx{'0' * 16}/jsapi_tickets", timeout=10)
    assert (missing.status_code, missing.json()["error"]) == (404, "unknown_account")

    simulator.advance_clock(7200)
    assert [t["valid"] for t in simulator.jsapi_tickets(appid)] == [False, False, False]


def test_getticket_refusals(simulator: Simulator, token: str) -> None:
    appid = official_account(simulator)
    access = authorizer_token(simulator, appid)
    assert getticket(simulator, access, "card")["errcode"] == 40097
    assert getticket(simulator, access, None)["errcode"] == 40097
    assert getticket(simulator, None)["errcode"] == 41001
    assert getticket(simulator, "sim_aat_unknown")["errcode"] == 40001
    assert getticket(simulator, token)["errcode"] == 40001  # a component token is no authorizer token

    newer = authorizer_token(simulator, appid)  # supersedes `access`: five minutes of grace
    assert getticket(simulator, access)["errcode"] == 0
    simulator.advance_clock(301)
    assert getticket(simulator, access)["errcode"] == 42001
    assert getticket(simulator, newer)["errcode"] == 0
    simulator.revoke(appid, push=False)
    assert getticket(simulator, newer)["errcode"] == 40001
    assert len(simulator.jsapi_tickets(appid)) == 2  # only the accepted calls issued one

    other = official_account(simulator)
    simulator.add_fault("getticket", after_effect=True)
    lost = requests.get(
        simulator.url + GETTICKET,
        params={"access_token": authorizer_token(simulator, other), "type": "jsapi"},
        timeout=10,
    )
    assert lost.status_code == 502
    assert len(simulator.jsapi_tickets(other)) == 1  # issued, never seen


def verdict(sim: Simulator, **spec: Any) -> dict[str, Any]:
    response = requests.post(sim.url + "/__sim/verify_jssdk", json=spec, timeout=10)
    answer: dict[str, Any] = response.json()
    return answer


def test_wx_config_is_accepted_as_wechats_client_accepts_it(simulator: Simulator) -> None:
    appid = official_account(simulator)
    access = authorizer_token(simulator, appid)
    older = getticket(simulator, access)["ticket"]
    card = getticket(simulator, access, "wx_card")["ticket"]
    ticket = getticket(simulator, access)["ticket"]
    page = "https://h5.svc.example/shop/index.html?from=menu&id=7"
    now = int(simulator.state.now())
    nonce = "Wm3WZYTPz0wzccnW"
    good = sign(ticket, nonce, now, page)

    assert simulator.verify_jssdk(appid, page, now, nonce, good)
    assert simulator.verify_jssdk(appid, page + "#/cart", str(now), nonce, good)  # the fragment is dropped
    spec = {"appid": appid, "url": page, "timestamp": now, "nonce_str": nonce, "signature": good}
    assert verdict(simulator, **spec) == {"accepted": True, "reason": None}
    # An earlier ticket is valid until its own expiry.
    assert simulator.verify_jssdk(appid, page, now, nonce, sign(older, nonce, now, page))

    def rejected(**override: Any) -> str:
        answer = verdict(simulator, **(spec | override))
        assert answer["accepted"] is False
        assert not simulator.verify_jssdk(
            override.get("appid", appid),
            override.get("url", page),
            override.get("timestamp", now),
            override.get("nonce_str", nonce),
            override.get("signature", good),
        )
        return str(answer["reason"])

    with_fragment = f"jsapi_ticket={ticket}&noncestr={nonce}&timestamp={now}&url={page}#/cart"
    assert (
        rejected(url=page + "#/cart", signature=hashlib.sha1(with_fragment.encode()).hexdigest())
        == "invalid_signature"
    )
    assert rejected(url="https://h5.svc.example/shop/index.html?from=menu") == "invalid_signature"
    assert rejected(nonce_str="another") == "invalid_signature"
    assert rejected(signature=good.upper()) == "invalid_signature"
    assert rejected(signature=sign(card, nonce, now, page)) == "invalid_signature"  # a card ticket
    assert rejected(appid=official_account(simulator)) == "invalid_signature"  # another account's
    late = now - 301
    assert rejected(timestamp=late, signature=sign(ticket, nonce, late, page)) == "timestamp_out_of_range"
    millis = now * 1000
    assert rejected(timestamp=millis, signature=sign(ticket, nonce, millis, page)) == "timestamp_out_of_range"

    simulator.advance_clock(7200)
    later = int(simulator.state.now())
    assert rejected(timestamp=later, signature=sign(ticket, nonce, later, page)) == "ticket_expired"
    fresh = getticket(simulator, authorizer_token(simulator, appid))["ticket"]
    assert simulator.verify_jssdk(appid, page, later, nonce, sign(fresh, nonce, later, page))

    for wrong, reason, status in (
        ({"timestamp": "12a"}, "invalid_timestamp", 400),
        ({"timestamp": 1.5}, "invalid_timestamp", 400),
        ({"signature": ""}, "missing_parameter", 400),
        ({"appid": "wx" + "0" * 16}, "unknown_account", 404),
        ({"extra": 1}, "unknown_field", 400),
    ):
        response = requests.post(simulator.url + "/__sim/verify_jssdk", json=spec | wrong, timeout=10)
        assert (response.status_code, response.json()["error"]) == (status, reason), wrong
