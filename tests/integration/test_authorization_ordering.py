"""Authorization state under hostile timing: pushes in the same second, late re-sent pushes, a
refresh in flight during a revocation, a link's state reused, and a code WeChat answers for another
account than the push named. Each test drives the real callback and redirect over the service's
own code paths against moto's server and the WeChat simulator."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from wechat_core import clock, runtime
from wechat_core.errors import LeaseExpired
from wechat_core.features import onboarding
from wechat_core.features.tokens import AuthorizerToken
from wechat_core.store import keys
from wechat_simulator import Platform, Simulator

from devtools.events import API_DOMAIN
from devtools.resources import Resources
from tests.conftest import FixedClock
from tests.support.flows import accepted_refresh_tokens, add_fault, authorize, authorizer, calls, give_ticket
from tests.support.gateway import Gateway
from tests.support.pushes import authorized_plaintext, invoke_callback, signed_push, unauthorized_plaintext

pytestmark = pytest.mark.integration


def deliver(simulator: Simulator, plaintext: str) -> None:
    assert invoke_callback(*signed_push(simulator, plaintext)) == (200, "success")


@pytest.fixture
def ticket(service: Resources, simulator: Simulator) -> None:
    give_ticket(simulator)


# --- 6: a revocation wins a tie ---------------------------------------------------------------


def test_unauthorized_in_the_same_second_as_authorized_revokes(
    ticket: None, simulator: Simulator, platform: Platform, fixed_clock: FixedClock
) -> None:
    appid = str(simulator.add_account("official_account")["appid"])
    now = int(fixed_clock.value)
    fixed_clock.value = now  # the exchange starts in the push's second too
    deliver(simulator, authorized_plaintext(platform, appid, simulator.query_auth_code(appid), now))
    assert authorizer(appid)["status"] == "active"
    deliver(simulator, unauthorized_plaintext(platform, appid, now))
    item = authorizer(appid)
    assert item["status"] == "revoked"
    assert "refresh_token" not in item


def test_authorized_in_the_same_second_as_unauthorized_does_not_reactivate(
    ticket: None, simulator: Simulator, platform: Platform
) -> None:
    appid = authorize(simulator)
    now = int(time.time()) + 5  # after the activation above
    deliver(simulator, unauthorized_plaintext(platform, appid, now))
    before = calls(simulator, "api_query_auth")
    deliver(simulator, authorized_plaintext(platform, appid, simulator.query_auth_code(appid), now))
    assert authorizer(appid)["status"] == "revoked"
    assert calls(simulator, "api_query_auth") == before  # refused as not newer: no exchange


# --- 7: every activation records when; older pushes change nothing -----------------------------


def test_late_older_unauthorized_does_not_revoke_a_reauthorization_finished_at_the_redirect(
    ticket: None, simulator: Simulator, platform: Platform, fixed_clock: FixedClock
) -> None:
    start = int(fixed_clock.value)
    appid = authorize(simulator)
    fixed_clock.advance(20)
    deliver(simulator, unauthorized_plaintext(platform, appid, start + 10))
    assert authorizer(appid)["status"] == "revoked"
    # Authorized again through a link; the redirect finishes it (no push seen yet).
    fixed_clock.advance(20)
    result = onboarding.complete(simulator.query_auth_code(appid))
    assert result.authorizer_appid == appid
    active = authorizer(appid)
    assert active["status"] == "active"
    assert active["activated_at"] == start + 40
    # WeChat re-sends revocations it got no answer for: older than the re-authorization.
    for late in (start + 10, start + 39):
        deliver(simulator, unauthorized_plaintext(platform, appid, late))
    item = authorizer(appid)
    assert item["status"] == "active"
    assert item["refresh_token"] == active["refresh_token"]
    assert item["refresh_token"] in accepted_refresh_tokens(simulator, appid)
    assert "due_at" in item
    # One in the very second of the re-authorization revokes (fail closed).
    deliver(simulator, unauthorized_plaintext(platform, appid, start + 40))
    assert authorizer(appid)["status"] == "revoked"


def test_authorized_push_older_than_the_last_event_is_not_exchanged(
    ticket: None, simulator: Simulator, platform: Platform
) -> None:
    appid = authorize(simulator)
    revoked_at = int(time.time()) + 5
    deliver(simulator, unauthorized_plaintext(platform, appid, revoked_at))
    before = calls(simulator, "api_query_auth")
    stale_code = simulator.query_auth_code(appid)  # a code WeChat would still take
    deliver(simulator, authorized_plaintext(platform, appid, stale_code, revoked_at - 30))
    assert calls(simulator, "api_query_auth") == before
    item = authorizer(appid)
    assert item["status"] == "revoked"
    assert "refresh_token" not in item


def test_redelivered_authorized_push_whose_exchange_failed_is_exchanged(
    ticket: None, simulator: Simulator, platform: Platform
) -> None:
    appid = str(simulator.add_account("official_account")["appid"])
    push = authorized_plaintext(platform, appid, simulator.query_auth_code(appid), int(time.time()))
    add_fault(simulator, api="api_query_auth", http_status=503, times=3)
    query, body = signed_push(simulator, push)
    status, _ = invoke_callback(query, body)
    assert status == 502  # WeChat will send it again
    assert authorizer(appid)["status"] == "pending"
    deliver(simulator, push)  # the same push, re-sent
    assert authorizer(appid)["status"] == "active"


# --- 8: a refresh in flight never writes over a revocation -------------------------------------


def test_refresh_in_flight_during_a_revocation_stores_nothing(
    ticket: None, simulator: Simulator, platform: Platform
) -> None:
    appid = authorize(simulator)
    token = AuthorizerToken(appid)
    leased = token.take_due_lease(clock.now() + 7200)
    assert leased is not None
    real_fetch = token.fetch

    def revoked_while_waiting_for_wechat(item: dict[str, Any]) -> Any:
        answer = real_fetch(item)
        deliver(simulator, unauthorized_plaintext(platform, appid, int(time.time()) + 5))
        return answer

    token.fetch = revoked_while_waiting_for_wechat  # type: ignore[method-assign]
    token.refresh_leased(leased)
    item = authorizer(appid)
    assert item["status"] == "revoked"
    for gone in ("access_token", "refresh_token", "due_pk", "due_at", "lease_owner", "lease_until"):
        assert gone not in item, gone


def test_61023_answered_after_a_revocation_is_no_false_alarm(
    ticket: None, simulator: Simulator, platform: Platform
) -> None:
    appid = authorize(simulator)
    token = AuthorizerToken(appid)
    leased = token.take_due_lease(clock.now() + 7200)
    assert leased is not None
    deliver(simulator, unauthorized_plaintext(platform, appid, int(time.time()) + 5))
    simulator.revoke(appid, push=False)  # WeChat now refuses the refresh token: 61023
    info_calls = calls(simulator, "api_get_authorizer_info")
    with pytest.raises(LeaseExpired):  # the revocation took the lease: no recovery call follows
        token.refresh_leased(leased)
    assert calls(simulator, "api_get_authorizer_info") == info_calls
    assert authorizer(appid)["status"] == "revoked"
    assert "needs_reauth_at" not in authorizer(appid)


# --- 10: a link's state is single use and bound to what the link asked for ---------------------


@pytest.fixture
def site(
    gateway: Gateway, simulator: Simulator, service: Resources, monkeypatch: pytest.MonkeyPatch
) -> Gateway:
    monkeypatch.setenv("PUBLIC_BASE_URL", gateway.url)
    runtime.reset()
    give_ticket(simulator)
    return gateway


def new_link(site: Gateway, **query: str) -> str:
    answer = requests.get(
        f"{site.url}/wechat/component/authorize", params={"format": "json", **query}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["url"])


def approve(link: str, appid: str) -> str:
    answer = requests.get(
        link, params={"sim_account": appid, "sim_action": "approve"}, allow_redirects=False, timeout=10
    )
    assert answer.status_code == 302, answer.headers.get("X-Sim-Error")
    return str(answer.headers["Location"])


def test_a_links_state_completes_one_authorization(site: Gateway, simulator: Simulator) -> None:
    first = str(simulator.add_account("official_account")["appid"])
    second = str(simulator.add_account("official_account")["appid"])
    redirect = approve(new_link(site), first)
    done = requests.get(redirect, timeout=10)
    assert done.status_code == 200, done.text
    again = requests.get(redirect, timeout=10)  # a reload of the same redirect: same answer
    assert again.status_code == 200, again.text
    exchanged = calls(simulator, "api_query_auth")
    assert exchanged == 1
    # Another authorization (its own code) sent back with the first link's state.
    state = redirect.split("state=")[1].split("&")[0]
    other_code = simulator.query_auth_code(second)
    reused = requests.get(
        f"{site.url}/wechat/component/authorized",
        params={"state": state, "auth_code": other_code},
        timeout=10,
    )
    assert (reused.status_code, reused.json()) == (409, {"error": "this authorization link was already used"})
    assert calls(simulator, "api_query_auth") == exchanged  # refused before any exchange
    assert runtime.store().authorizers.get(second) is None


def test_a_link_for_one_account_does_not_confirm_another(site: Gateway, simulator: Simulator) -> None:
    wanted = str(simulator.add_account("official_account")["appid"])
    other = str(simulator.add_account("official_account")["appid"])
    redirect = approve(new_link(site, biz_appid=wanted), wanted)
    state = redirect.split("state=")[1].split("&")[0]
    answer = requests.get(
        f"{site.url}/wechat/component/authorized",
        params={"state": state, "auth_code": simulator.query_auth_code(other)},
        timeout=10,
    )
    assert (answer.status_code, answer.json()) == (
        403,
        {"error": "this authorization link was made for another account"},
    )
    # WeChat granted it all the same, so it is kept (the push would bring it anyway).
    assert authorizer(other)["status"] == "active"


def test_a_link_for_official_accounts_does_not_confirm_a_mini_program(
    site: Gateway, simulator: Simulator
) -> None:
    mini = str(simulator.add_account("mini_program")["appid"])
    redirect = approve(new_link(site), mini)
    state = redirect.split("state=")[1].split("&")[0]
    link_item = runtime.store().table.get(keys.state_sk(state))
    assert link_item is not None
    runtime.store().table.update(
        keys.state_sk(state), set_values={"auth_type": 1}
    )  # as a link for OAs would hold
    answer = requests.get(redirect, timeout=10)
    assert answer.status_code == 403
    assert authorizer(mini)["status"] == "active"


def test_a_forged_code_does_not_use_up_the_state(site: Gateway, simulator: Simulator) -> None:
    appid = str(simulator.add_account("official_account")["appid"])
    redirect = approve(new_link(site), appid)
    state = redirect.split("state=")[1].split("&")[0]
    forged = requests.get(
        f"{site.url}/wechat/component/authorized",
        params={"state": state, "auth_code": "queryauthcode@@@forged"},
        timeout=10,
    )
    assert forged.status_code == 400
    assert requests.get(redirect, timeout=10).status_code == 200  # the owner still finishes


# --- 11: WeChat's answer is stored under the appid it answered for -----------------------------


def test_push_naming_another_appid_stores_what_wechat_answered(
    ticket: None, simulator: Simulator, platform: Platform, service: Resources
) -> None:
    real = str(simulator.add_account("official_account")["appid"])
    named = str(simulator.add_account("official_account")["appid"])
    code = simulator.query_auth_code(real)
    deliver(simulator, authorized_plaintext(platform, named, code, int(time.time())))
    item = authorizer(real)
    assert item["status"] == "active"
    assert item["refresh_token"] in accepted_refresh_tokens(simulator, real)
    assert runtime.store().authorizers.get(named) is None  # the push's own pending item goes
    assert not any(code in str(i) for i in service.items())  # no plaintext code anywhere


def test_a_failed_exchange_leaves_no_plaintext_code(
    ticket: None, simulator: Simulator, platform: Platform, service: Resources
) -> None:
    appid = str(simulator.add_account("official_account")["appid"])
    code = "queryauthcode@@@never-issued"
    deliver(simulator, authorized_plaintext(platform, appid, code, int(time.time())))
    assert authorizer(appid)["status"] == "pending"
    assert not any(code in str(i) for i in service.items())


# --- 5: links point at API Gateway's own domain, never at a client's Host ----------------------


@pytest.fixture
def no_public_base_url(
    gateway: Gateway, simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Gateway]:
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    runtime.reset()
    give_ticket(simulator)
    yield gateway
    runtime.reset()


def test_redirect_uri_comes_from_the_request_context_not_the_host_header(
    no_public_base_url: Gateway, simulator: Simulator
) -> None:
    answer = requests.get(
        f"{no_public_base_url.url}/wechat/component/authorize",
        params={"format": "json"},
        headers={"Host": "evil.example", "X-Forwarded-Proto": "http"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    url = answer.json()["url"]
    assert "evil.example" not in url
    assert f"redirect_uri=https%3A%2F%2F{API_DOMAIN}%2Fv1%2Fwechat%2Fcomponent%2Fauthorized%3Fstate%3D" in url


def test_every_authorization_page_is_no_store(site: Gateway, simulator: Simulator) -> None:
    page = requests.get(f"{site.url}/wechat/component/authorize", timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert page.headers["Cache-Control"] == "no-store"
    appid = str(simulator.add_account("official_account")["appid"])
    done = requests.get(approve(new_link(site), appid), timeout=10)
    assert done.status_code == 200
    assert done.headers["Cache-Control"] == "no-store"
