"""H5 pages for authorized Official Accounts over HTTP: web OAuth (authorize -> WeChat's consent
page -> callback -> page?ticket -> redeem) and JS-SDK configurations, through the loopback gateway
in front of the real H5 and admin handlers, DynamoDB on moto's (serialized) server and WeChat
played by the simulator. No OAuth token the simulator issued may appear in any response or log
(conftest checks every response and log after each test; this module checks the table too)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from wechat_core import clock, runtime
from wechat_core.features import h5
from wechat_core.protocol import jssdk
from wechat_core.store import keys
from wechat_simulator import Simulator

from devtools.project import ROOT, child_environment
from devtools.resources import Resources
from tests.conftest import FixedClock, reset_service_caches
from tests.support.flows import add_fault, authorize, calls, give_ticket
from tests.support.gateway import Gateway
from tests.support.pushes import invoke_callback, signed_push, unauthorized_plaintext

pytestmark = pytest.mark.integration

PAGE = "https://h5.example.com/app/index.html"
ALLOW_LIST = "https://h5.example.com/app,https://shop.example.com:8443"
TOKEN_EXCHANGE = "access_token"  # the simulator's name for sns/oauth2/component/access_token
LOOK_ALIKES = [
    "https://h5.example.com.evil.com/app/",
    "https://h5.example.com@evil.com/app/",
    "https://evil.com@h5.example.com/app/",
    "http://h5.example.com/app/",
    "//h5.example.com/app/",
    "https:/h5.example.com/app/",
    "https://h5.example.com/apple",
    "https://h5.example.com/app/../admin",
    "https://h5.example.com/app/%2e%2e/admin",
    "https://h5.example.com\\@evil.com/app/",
    "https://h5.example.com:444/app/",
    "https://shop.example.com/",
    "javascript:alert(1)//https://h5.example.com/app/",
    " https://h5.example.com/app/",
    "https://h5.example.com/app/\r\nSet-Cookie: x",
    "",
]


@pytest.fixture
def h5_service(service: Resources, gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> Gateway:
    monkeypatch.setenv("H5_ALLOW_LIST", ALLOW_LIST)
    monkeypatch.setenv("PUBLIC_BASE_URL", gateway.url)
    reset_service_caches()
    return gateway


@pytest.fixture
def account(h5_service: Gateway, simulator: Simulator) -> str:
    give_ticket(simulator)
    return authorize(simulator, "official_account", unionid_bound=True)


@pytest.fixture(autouse=True)
def oauth_tokens_never_stored(request: pytest.FixtureRequest) -> Iterator[None]:
    """No OAuth token the simulator issued is in the table (conftest checks responses and logs)."""
    if "h5_service" not in request.fixturenames:
        yield
        return
    # Taken before the test, so the service is still there for the check after it.
    request.getfixturevalue("h5_service")
    sim: Simulator = request.getfixturevalue("simulator")
    yield
    table = json.dumps(_all_items(), default=str)
    assert not [t for t in sim.oauth_tokens() if t in table], "an OAuth token was stored"


def _all_items() -> list[dict[str, Any]]:
    conf = runtime.settings()
    response = runtime.dynamodb().scan(TableName=conf.table_name)
    return [{k: next(iter(v.values())) for k, v in item.items()} for item in response["Items"]]


def _count(prefix: str) -> int:
    return sum(1 for item in _all_items() if str(item["sk"]).startswith(prefix))


def start(gateway: Gateway, appid: str, **params: str) -> requests.Response:
    query = {"scope": "snsapi_base", "redirect_uri": PAGE, "state": "page-state", **params}
    return requests.get(
        f"{gateway.url}/wechat/oauth/{appid}/authorize", params=query, allow_redirects=False, timeout=10
    )


def follow(url: str) -> requests.Response:
    return requests.get(url, allow_redirects=False, timeout=10)


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


def sign_in(
    gateway: Gateway, simulator: Simulator, appid: str, scope: str = "snsapi_base", user: str | None = None
) -> dict[str, str]:
    """The whole browser journey; returns the query the page is sent back with."""
    started = start(gateway, appid, scope=scope)
    assert started.status_code == 302, started.text
    callback = simulator.oauth_consent(started.headers["Location"], user=user)
    back = follow(callback)
    assert back.status_code == 302, back.text
    assert back.headers["Location"].startswith(PAGE + "?")
    return query_of(back.headers["Location"])


def redeem(gateway: Gateway, ticket: Any) -> requests.Response:
    return requests.post(f"{gateway.url}/wechat/oauth/redeem", json={"ticket": ticket}, timeout=10)


# --- web OAuth ---------------------------------------------------------------------------------


def test_authorize_sends_the_browser_to_wechat_with_a_state_of_ours(
    h5_service: Gateway, account: str, simulator: Simulator
) -> None:
    answer = start(h5_service, account, scope="snsapi_userinfo")
    assert answer.status_code == 302
    assert answer.headers["Cache-Control"] == "no-store"
    location = answer.headers["Location"]
    assert location.startswith(f"{simulator.url}/connect/oauth2/authorize?")
    assert location.endswith("#wechat_redirect")
    query = query_of(location.removesuffix("#wechat_redirect"))
    assert list(query) == ["appid", "redirect_uri", "response_type", "scope", "state", "component_appid"]
    assert query["appid"] == account
    assert query["redirect_uri"] == f"{h5_service.url}/wechat/oauth/{account}/callback"
    assert (query["response_type"], query["scope"]) == ("code", "snsapi_userinfo")
    assert query["component_appid"] == runtime.settings().component_appid
    assert len(query["state"]) == 32
    assert query["state"] != "page-state"
    as_json = start(h5_service, account, format="json")
    assert as_json.status_code == 200
    assert as_json.json()["url"].startswith(f"{simulator.url}/connect/oauth2/authorize?")


def test_snsapi_base_end_to_end_gives_the_openid_once(
    h5_service: Gateway, account: str, simulator: Simulator
) -> None:
    back = sign_in(h5_service, simulator, account)
    assert back["state"] == "page-state"
    assert set(back) == {"ticket", "state"}
    first = redeem(h5_service, back["ticket"])
    assert first.status_code == 200, first.text
    identity = first.json()
    assert identity["appid"] == account
    assert identity["openid"] == simulator.fan_openid(account)
    assert identity["scope"] == "snsapi_base"
    assert "user" not in identity
    again = redeem(h5_service, back["ticket"])
    assert again.status_code == 409
    assert again.json() == {"error": "ticket already redeemed"}
    assert calls(simulator, "userinfo") == 0


def test_snsapi_userinfo_end_to_end_gives_the_profile_and_unionid(
    h5_service: Gateway, account: str, simulator: Simulator
) -> None:
    back = sign_in(h5_service, simulator, account, scope="snsapi_userinfo", user="alice")
    identity = redeem(h5_service, back["ticket"]).json()
    assert identity["openid"] == simulator.fan_openid(account, "alice")
    assert identity["scope"] == "snsapi_userinfo"
    assert identity["unionid"]
    assert identity["user"]["nickname"]
    assert {"headimgurl", "sex"} <= set(identity["user"])
    assert calls(simulator, "userinfo") == 1
    # The identity left the table with its redemption; only the redeemed marker remains.
    (item,) = [i for i in _all_items() if str(i["sk"]).startswith("oauthticket#")]
    assert "identity" not in item


def test_a_user_who_refuses_goes_back_with_access_denied(
    h5_service: Gateway, account: str, simulator: Simulator
) -> None:
    started = start(h5_service, account, scope="snsapi_userinfo")
    callback = simulator.oauth_consent(started.headers["Location"], action="refuse")
    back = follow(callback)
    assert back.status_code == 302
    assert query_of(back.headers["Location"]) == {"error": "access_denied", "state": "page-state"}
    assert calls(simulator, TOKEN_EXCHANGE) == 0


def test_the_page_keeps_its_query_and_fragment(
    h5_service: Gateway, account: str, simulator: Simulator
) -> None:
    page = "https://h5.example.com/app/?shop=7&ticket=forged#/orders?id=1"
    started = start(h5_service, account, redirect_uri=page, state="")
    back = follow(simulator.oauth_consent(started.headers["Location"]))
    location = back.headers["Location"]
    assert location.startswith("https://h5.example.com/app/?shop=7&ticket=")
    assert location.endswith("#/orders?id=1")
    assert query_of(location.split("#")[0])["ticket"] != "forged"


def _callback_url(gateway: Gateway, path_appid: str, **params: str) -> str:
    return (
        requests.Request("GET", f"{gateway.url}/wechat/oauth/{path_appid}/callback", params=params)
        .prepare()
        .url
        or ""
    )


def test_forged_state_is_refused_without_calling_wechat(
    h5_service: Gateway, account: str, simulator: Simulator
) -> None:
    for state in ("0" * 32, "not-hex", "", "a" * 200):
        answer = follow(_callback_url(h5_service, account, code="c" * 32, state=state, appid=account))
        assert answer.status_code == 400, state
        assert "text/html" in answer.headers["Content-Type"]
        assert "unknown or expired state" in answer.text
    assert calls(simulator, TOKEN_EXCHANGE) == 0


def test_replayed_state_is_refused_without_calling_wechat(
    h5_service: Gateway, account: str, simulator: Simulator
) -> None:
    started = start(h5_service, account)
    callback = simulator.oauth_consent(started.headers["Location"])
    assert follow(callback).status_code == 302
    again = follow(callback)
    assert again.status_code == 409
    assert "state already used" in again.text
    assert calls(simulator, TOKEN_EXCHANGE) == 1


def test_expired_state_is_refused_without_calling_wechat(
    h5_service: Gateway, account: str, simulator: Simulator, fixed_clock: FixedClock
) -> None:
    started = start(h5_service, account)
    callback = simulator.oauth_consent(started.headers["Location"])
    fixed_clock.advance(h5.STATE_TTL_SECONDS + 1)
    answer = follow(callback)
    assert answer.status_code == 400
    assert calls(simulator, TOKEN_EXCHANGE) == 0


def test_another_accounts_state_is_refused_without_calling_wechat(
    h5_service: Gateway, account: str, simulator: Simulator
) -> None:
    other = authorize(simulator, "official_account")
    started = start(h5_service, account)
    state = query_of(started.headers["Location"].split("#")[0])["state"]
    answer = follow(_callback_url(h5_service, other, code="c" * 32, state=state, appid=other))
    assert answer.status_code == 403
    mismatched = follow(_callback_url(h5_service, account, code="c" * 32, state=state, appid=other))
    assert mismatched.status_code == 400  # WeChat's appid is not the path's
    assert calls(simulator, TOKEN_EXCHANGE) == 0
    # Neither attempt used the state up: the account's own callback still works.
    assert follow(simulator.oauth_consent(started.headers["Location"])).status_code == 302


def test_a_code_wechat_refuses_sends_the_browser_back_with_an_error(
    h5_service: Gateway, account: str, simulator: Simulator
) -> None:
    started = start(h5_service, account)
    callback = simulator.oauth_consent(started.headers["Location"])
    add_fault(simulator, api=TOKEN_EXCHANGE, errcode=40163, times=1)
    back = follow(callback)
    assert back.status_code == 302
    assert query_of(back.headers["Location"]) == {"error": "invalid_grant", "state": "page-state"}
    assert _count("oauthticket#") == 0


@pytest.mark.parametrize("target", LOOK_ALIKES)
def test_every_look_alike_target_is_refused_and_writes_nothing(
    h5_service: Gateway, account: str, target: str
) -> None:
    before = _count("oauthstate#")
    answer = start(h5_service, account, redirect_uri=target)
    assert answer.status_code == 400, target
    assert answer.json()["error"].startswith("redirect_uri")
    assert _count("oauthstate#") == before


@pytest.mark.parametrize(
    ("params", "status", "reason"),
    [
        ({"scope": "snsapi_login"}, 400, "scope must be snsapi_base or snsapi_userinfo"),
        ({"format": "xml"}, 400, "format must be json or left out"),
        ({"state": "x" * 513}, 400, "state must be printable ASCII of at most 512 characters"),
        ({"state": "a\u00e9"}, 400, "state must be printable ASCII of at most 512 characters"),
    ],
)
def test_bad_authorize_requests_are_refused_with_a_reason(
    h5_service: Gateway, account: str, params: dict[str, str], status: int, reason: str
) -> None:
    answer = start(h5_service, account, **params)
    assert (answer.status_code, answer.json()) == (status, {"error": reason})
    assert _count("oauthstate#") == 0


def test_repeated_parameters_are_refused(h5_service: Gateway, account: str) -> None:
    answer = requests.get(
        f"{h5_service.url}/wechat/oauth/{account}/authorize?scope=snsapi_base"
        f"&redirect_uri={PAGE}&redirect_uri=https://evil.com/",
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 400
    assert answer.json() == {"error": "query parameter redirect_uri given more than once"}


def test_only_active_official_accounts_start_oauth(
    h5_service: Gateway, account: str, simulator: Simulator
) -> None:
    mini = authorize(simulator, "mini_program")
    assert start(h5_service, mini).status_code == 400
    assert start(h5_service, "wx" + "0" * 16).status_code == 404
    assert start(h5_service, "not-an-appid").status_code == 400
    revoked = authorize(simulator, "official_account")
    simulator.revoke(revoked, push=False)
    push = signed_push(simulator, unauthorized_plaintext(simulator.state.platform, revoked, int(clock.now())))
    assert invoke_callback(*push) == (200, "success")
    assert start(h5_service, revoked).status_code == 409
    assert _count("oauthstate#") == 0


def test_tickets_expire(
    h5_service: Gateway, account: str, simulator: Simulator, fixed_clock: FixedClock
) -> None:
    back = sign_in(h5_service, simulator, account)
    fixed_clock.advance(h5.TICKET_TTL_SECONDS + 1)
    answer = redeem(h5_service, back["ticket"])
    assert (answer.status_code, answer.json()) == (404, {"error": "unknown or expired ticket"})


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"ticket": "short"}, "ticket must be the value the page received"),
        ({"ticket": 12}, "ticket must be the value the page received"),
        ({}, "ticket must be the value the page received"),
        ({"ticket": "a" * 43, "openid": "x"}, "unknown field openid"),
    ],
)
def test_bad_redemptions_are_refused(h5_service: Gateway, body: dict[str, Any], reason: str) -> None:
    answer = requests.post(f"{h5_service.url}/wechat/oauth/redeem", json=body, timeout=10)
    assert (answer.status_code, answer.json()) == (400, {"error": reason})
    unknown = redeem(h5_service, "a" * 43)
    assert unknown.status_code == 404


# --- JS-SDK --------------------------------------------------------------------------------------


def config(gateway: Gateway, appid: str, url: str, **headers: str) -> requests.Response:
    return requests.get(
        f"{gateway.url}/wechat/jssdk/{appid}/config", params={"url": url}, headers=headers, timeout=10
    )


def test_jssdk_config_is_accepted_by_wechat(h5_service: Gateway, account: str, simulator: Simulator) -> None:
    page = "https://h5.example.com/app/share.html?item=3#section"
    answer = config(h5_service, account, page)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"appId", "timestamp", "nonceStr", "signature"}
    assert body["appId"] == account
    assert simulator.verify_jssdk(account, page, body["timestamp"], body["nonceStr"], body["signature"])
    (ticket,) = [t["ticket"] for t in simulator.jsapi_tickets(account)]
    expected = jssdk.signature(ticket, body["nonceStr"], body["timestamp"], page.split("#", maxsplit=1)[0])
    assert body["signature"] == expected
    # Another page: same ticket, no further getticket call.
    assert config(h5_service, account, "https://shop.example.com:8443/p").status_code == 200
    assert calls(simulator, "getticket") == 1


def test_jssdk_config_allows_only_listed_pages_of_official_accounts(
    h5_service: Gateway, account: str, simulator: Simulator
) -> None:
    for target in ("https://evil.com/", "https://h5.example.com.evil.com/app/", "http://h5.example.com/app/"):
        answer = config(h5_service, account, target)
        assert answer.status_code == 400
        assert answer.json()["error"].startswith("url:")
    mini = authorize(simulator, "mini_program")
    assert config(h5_service, mini, PAGE).status_code == 400
    assert config(h5_service, "wx" + "1" * 16, PAGE).status_code == 404
    assert calls(simulator, "getticket") == 0
    assert _count(keys.JSAPI_TICKET_PREFIX) == 0  # no item for refused requests


def test_cors_answers_only_listed_origins(h5_service: Gateway, account: str) -> None:
    allowed = config(h5_service, account, PAGE, Origin="https://shop.example.com:8443")
    assert allowed.headers.get("Access-Control-Allow-Origin") == "https://shop.example.com:8443"
    other = config(h5_service, account, PAGE, Origin="https://evil.com")
    assert "Access-Control-Allow-Origin" not in other.headers
    # Errors too, so the page can read the reason.
    refused = config(h5_service, account, "https://evil.com/", Origin="https://h5.example.com")
    assert refused.status_code == 400
    assert refused.headers.get("Access-Control-Allow-Origin") == "https://h5.example.com"
    assert refused.headers.get("Vary") == "Origin"


def _answer_line(output: str) -> str:
    (line,) = [line for line in output.splitlines() if line.startswith("ANSWER ")]
    return line.removeprefix("ANSWER ")


def test_thirty_processes_asking_at_once_make_one_getticket_call(
    h5_service: Gateway, account: str, simulator: Simulator
) -> None:
    add_fault(simulator, api="getticket", delay=0.5)  # slow, so the others really wait
    callers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.support.jssdk_caller", account, PAGE],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=child_environment(),
        )
        for _ in range(30)
    ]
    try:
        for caller in callers:  # every process is ready (imports done) before any asks
            assert caller.stdout is not None
            while (line := caller.stdout.readline()) and line.strip() != "READY":
                pass
            assert line.strip() == "READY"
        for caller in callers:
            assert caller.stdin is not None
            caller.stdin.write("GO\n")
            caller.stdin.flush()
        outputs = [caller.communicate(timeout=60)[0] for caller in callers]
        answers = [json.loads(_answer_line(output)) for output in outputs]
    finally:
        for caller in callers:
            caller.kill()
    assert [a["status"] for a in answers] == [200] * 30
    assert calls(simulator, "getticket") == 1
    for answer in answers:
        body = answer["body"]
        assert simulator.verify_jssdk(account, PAGE, body["timestamp"], body["nonceStr"], body["signature"])


def test_business_systems_get_the_same_ticket_and_revocation_drops_it(
    h5_service: Gateway, account: str, simulator: Simulator
) -> None:
    assert config(h5_service, account, PAGE).status_code == 200
    served = requests.get(f"{h5_service.url}/wechat/authorizers/{account}/jsapi-ticket", timeout=10)
    assert served.status_code == 200, served.text
    (issued,) = simulator.jsapi_tickets(account)
    assert served.json()["jsapi_ticket"] == issued["ticket"]
    assert 0 < served.json()["expires_in"] <= 7200
    simulator.revoke(account, push=False)
    push = signed_push(simulator, unauthorized_plaintext(simulator.state.platform, account, int(clock.now())))
    assert invoke_callback(*push) == (200, "success")
    assert runtime.store().tokens.read(keys.jsapi_ticket_sk(account)) is None
    assert config(h5_service, account, PAGE).status_code == 409
    assert (
        requests.get(f"{h5_service.url}/wechat/authorizers/{account}/jsapi-ticket", timeout=10).status_code
        == 409
    )
    assert calls(simulator, "getticket") == 1


def test_the_refresher_keeps_tickets_fresh(h5_service: Gateway, account: str, simulator: Simulator) -> None:
    from wechat_core.features import refresher

    assert config(h5_service, account, PAGE).status_code == 200
    sk = keys.jsapi_ticket_sk(account)
    item = runtime.store().tokens.read(sk)
    assert item is not None
    assert item["due_pk"]
    assert item["authorizer_appid"] == account
    now = clock.now()
    runtime.store().table.update(sk, set_values={"expires_at": now + 600, "due_at": now - 1})
    report = refresher.run(lambda: 300_000)
    assert report.refreshed == 1
    assert report.failed == 0
    assert calls(simulator, "getticket") == 2
    fresh = runtime.store().tokens.read(sk)
    assert fresh is not None
    assert fresh["ticket"] != item["ticket"]
    assert fresh["expires_at"] > now + 7000


def test_a_ticket_whose_account_must_authorize_again_leaves_the_refresh_schedule(
    h5_service: Gateway, account: str, simulator: Simulator
) -> None:
    from wechat_core.features import refresher

    assert config(h5_service, account, PAGE).status_code == 200
    sk = keys.jsapi_ticket_sk(account)
    now = clock.now()
    runtime.store().table.update(sk, set_values={"expires_at": now + 600, "due_at": now - 1})
    runtime.store().table.update(keys.authorizer_sk(account), set_values={"status": "needs_reauth"})
    report = refresher.run(lambda: 300_000)
    assert (report.skipped, report.failed) == (1, 0)
    item = runtime.store().tokens.read(sk)
    assert item is not None
    assert "due_pk" not in item  # no getticket attempt on every run until the account authorizes again
    assert calls(simulator, "getticket") == 1
    # The ticket still valid is served meanwhile; once expired, the page gets the reason.
    assert config(h5_service, account, PAGE).status_code == 200
    runtime.store().table.update(sk, set_values={"expires_at": now - 1})
    assert config(h5_service, account, PAGE).status_code == 409
