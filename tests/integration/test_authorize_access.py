"""AuthorizeAccess=signed: the authorization page opens only from links signed by the IAM route
``POST /wechat/component/authorize-links``, so anonymous requests cannot spend
api_create_preauthcode quota. With the default ``open`` the page stays open (the console flow)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from wechat_core import runtime
from wechat_simulator import Simulator

from devtools.resources import Resources
from tests.conftest import FixedClock
from tests.support.flows import calls, give_ticket
from tests.support.gateway import Gateway

pytestmark = pytest.mark.integration

LINKS = "/wechat/component/authorize-links"


@pytest.fixture
def signed_site(
    gateway: Gateway, simulator: Simulator, service: Resources, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Gateway]:
    monkeypatch.setenv("PUBLIC_BASE_URL", gateway.url)
    monkeypatch.setenv("AUTHORIZE_ACCESS", "signed")
    runtime.reset()
    give_ticket(simulator)
    yield gateway
    runtime.reset()


def signed_link(site: Gateway, **body: Any) -> dict[str, Any]:
    answer = requests.post(f"{site.url}{LINKS}", json=body, timeout=10)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_signed_link_opens_the_page_and_unsigned_requests_spend_nothing(
    signed_site: Gateway, simulator: Simulator, service: Resources
) -> None:
    before = service.snapshot()
    for params in ({}, {"format": "json"}, {"format": "redirect", "auth_type": "2"}):
        answer = requests.get(f"{signed_site.url}/wechat/component/authorize", params=params, timeout=10)
        assert (answer.status_code, answer.json()) == (
            403,
            {"error": "this page opens only from a signed authorization link"},
        )
    assert calls(simulator, "api_create_preauthcode") == 0
    assert service.snapshot() == before

    link = signed_link(signed_site, auth_type="2", mobile=True, expires_in=3600)
    assert link["url"].startswith(f"{signed_site.url}/wechat/component/authorize?")
    opened = requests.get(link["url"], params={"format": "json"}, timeout=10)
    assert opened.status_code == 200, opened.text
    wechat_link = query_of(opened.json()["url"])
    assert (wechat_link["auth_type"], opened.json()["mobile"]) == ("2", True)
    assert calls(simulator, "api_create_preauthcode") == 1


@pytest.mark.parametrize(
    "change",
    [
        {"auth_type": "3"},  # asks for more than was signed
        {"biz_appid": "wx" + "1" * 16},
        {"mobile": "0"},
        {"category_list": "1|2"},
        {"expires": "9999999999"},
        {"signature": "A" * 43},
    ],
    ids=["auth_type", "biz_appid", "mobile", "category_list", "expires", "signature"],
)
def test_a_changed_signed_link_is_refused(
    signed_site: Gateway, simulator: Simulator, change: dict[str, str]
) -> None:
    link = signed_link(signed_site, auth_type="2", mobile=True)
    query = query_of(link["url"]) | change
    answer = requests.get(f"{signed_site.url}/wechat/component/authorize?{urlencode(query)}", timeout=10)
    assert (answer.status_code, answer.json()) == (403, {"error": "invalid authorization link signature"})
    assert calls(simulator, "api_create_preauthcode") == 0


def test_an_expired_signed_link_is_refused(
    signed_site: Gateway, simulator: Simulator, fixed_clock: FixedClock
) -> None:
    link = signed_link(signed_site, expires_in=60)
    fixed_clock.advance(61)
    answer = requests.get(link["url"], timeout=10)
    assert (answer.status_code, answer.json()) == (403, {"error": "this authorization link has expired"})
    assert calls(simulator, "api_create_preauthcode") == 0


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"expires_in": 10}, 400, "expires_in must be between 60 and 2592000 seconds"),
        ({"expires_in": 31 * 24 * 3600}, 400, "expires_in must be between 60 and 2592000 seconds"),
        ({"expires_in": "3600"}, 400, "expires_in must be a whole number of seconds"),
        ({"mobile": "yes"}, 400, "mobile must be true or false"),
        ({"auth_type": "9"}, 400, "auth_type must be 1 (official accounts), 2 (mini programs) or 3 (both)"),
        ({"biz_appid": "nope"}, 400, "biz_appid must be an appid (wx + 16 characters)"),
        ({"redirect": "https://evil.example"}, 400, "unknown field redirect"),
        ([1, 2], 400, "body must be a JSON object"),
    ],
    ids=[
        "too-short",
        "too-long",
        "string-expiry",
        "mobile-word",
        "auth-type",
        "biz-appid",
        "unknown",
        "list",
    ],
)
def test_bad_signing_requests_are_refused(
    signed_site: Gateway, simulator: Simulator, body: Any, status: int, reason: str
) -> None:
    answer = requests.post(f"{signed_site.url}{LINKS}", json=body, timeout=10)
    assert (answer.status_code, answer.json()) == (status, {"error": reason})


def test_signing_needs_a_json_body(signed_site: Gateway) -> None:
    answer = requests.post(f"{signed_site.url}{LINKS}", data="auth_type=2", timeout=10)
    assert (answer.status_code, answer.json()) == (415, {"error": "Content-Type must be application/json"})


def test_open_access_needs_no_signature(
    gateway: Gateway, simulator: Simulator, service: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUBLIC_BASE_URL", gateway.url)
    monkeypatch.delenv("AUTHORIZE_ACCESS", raising=False)
    runtime.reset()
    give_ticket(simulator)
    answer = requests.get(f"{gateway.url}/wechat/component/authorize", params={"format": "json"}, timeout=10)
    assert answer.status_code == 200, answer.text
